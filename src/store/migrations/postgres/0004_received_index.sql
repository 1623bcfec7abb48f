-- 4: lighter per-delivery index upkeep: only waiting deliveries are
-- indexed by state (a partial index), and the unused task index goes.
DROP INDEX deliveries_task;
DROP INDEX deliveries_state;
CREATE INDEX deliveries_received ON deliveries (id) WHERE state = 'received';
