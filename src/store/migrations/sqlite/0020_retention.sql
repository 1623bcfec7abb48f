-- 20: retention (HEALER_RETENTION_DAYS). The deliveries removed once they
-- are older than the retention leave their counts here, by event, state
-- and reason, so the delivery counters (rebuilt from the rows at start)
-- still count every delivery ever received. Event keys are removed with
-- their first delivery's age: the index finds them.
CREATE TABLE delivery_counts_pruned (
  event_name TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (event_name, state, reason)
);
CREATE INDEX event_keys_first_seen ON event_keys (first_seen_ms);
