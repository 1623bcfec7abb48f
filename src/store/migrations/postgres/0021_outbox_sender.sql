-- 21: the outbox process sending a notification (its store owner): it
-- takes the row for the send (next_ms moves to the end of a lease, which
-- its lease keeper renews while it lives), so no other replica sends the
-- message meanwhile, even once the sender's advisory lock went with a lost
-- database session; a recorded result clears it. A sender that died stops
-- renewing: the row is due again when its lease ends.
ALTER TABLE notifications ADD COLUMN sending_by TEXT;
