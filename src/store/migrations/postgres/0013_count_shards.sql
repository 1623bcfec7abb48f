-- 13: the delivery counters in shards, one per connection (its backend pid
-- modulo 64, the column's default): the counter rows a transaction adds to
-- are its own connection's, so the intake batches of several connections
-- (a replica's intake lanes, other replicas) never wait for each other's
-- commit to count a delivery. A count is the sum of its shards.
ALTER TABLE delivery_counts ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE delivery_counts ALTER COLUMN shard SET DEFAULT (pg_backend_pid() % 64);
ALTER TABLE delivery_counts DROP CONSTRAINT delivery_counts_pkey;
ALTER TABLE delivery_counts ADD PRIMARY KEY (event_name, state, reason, shard);
