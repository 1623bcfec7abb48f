-- 19: a redelivery request GitHub did not take (a 5xx, 401/403, a rate
-- limit) is given back for a later pass as outcome 'retry' (it was deleted,
-- which forgot how often GitHub had not taken it). not_taken counts the
-- requests GitHub answered it did not take (a rate limit is not counted: it
-- was answered before anything happened); after a few, or once the delivery
-- is older than GitHub keeps deliveries, it is recorded 'failed' for good.
ALTER TABLE redeliveries ADD COLUMN not_taken INTEGER NOT NULL DEFAULT 0;
