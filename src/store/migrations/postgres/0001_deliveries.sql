-- 1: deliveries, normalized events, event identity keys, counters.
CREATE TABLE deliveries (
  id BIGSERIAL PRIMARY KEY,
  delivery_id TEXT NOT NULL UNIQUE,
  hook_id TEXT,
  source TEXT NOT NULL,
  event_name TEXT NOT NULL,
  action TEXT,
  headers_json TEXT NOT NULL,
  body BYTEA NOT NULL,
  received_ms BIGINT NOT NULL,
  state TEXT NOT NULL,
  answer TEXT NOT NULL,
  reason TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  process_count INTEGER NOT NULL DEFAULT 0,
  dedup_key TEXT,
  duplicate_of TEXT,
  task_id TEXT,
  updated_ms BIGINT NOT NULL,
  finished_ms BIGINT
);
CREATE INDEX deliveries_state ON deliveries (state, id);
CREATE INDEX deliveries_task ON deliveries (task_id);

CREATE TABLE event_keys (
  dedup_key TEXT PRIMARY KEY,
  delivery_id TEXT NOT NULL,
  task_id TEXT,
  first_seen_ms BIGINT NOT NULL
);

CREATE TABLE events (
  delivery_id TEXT PRIMARY KEY REFERENCES deliveries (delivery_id),
  event_json TEXT NOT NULL,
  created_ms BIGINT NOT NULL
);

CREATE TABLE delivery_counts (
  event_name TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (event_name, state, reason)
);
