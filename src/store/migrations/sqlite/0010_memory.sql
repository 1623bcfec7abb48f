-- 10: memory. One record per finished task (what failed, which agents
-- tried, how it ended, the fix or the escalation) with a weight that grows
-- when it helps a later success; searched by full text (FTS5, BM25) within
-- a failure type. The failure type is an FTS column so a search is one
-- posting-list intersection; '_' is part of a word (rust_clippy,
-- unused_variables).
CREATE TABLE memories (
  id INTEGER PRIMARY KEY,
  task_id TEXT NOT NULL UNIQUE,
  repository TEXT NOT NULL,
  workflow TEXT,
  job TEXT,
  failure_type TEXT,
  event TEXT NOT NULL,
  outcome TEXT NOT NULL,
  evidence TEXT,
  first_agent TEXT,
  fixed_by TEXT,
  attempts_json TEXT NOT NULL,
  n_attempts INTEGER NOT NULL DEFAULT 0,
  time_to_fix_ms BIGINT,
  pr_url TEXT,
  commits TEXT,
  summary TEXT,
  weight REAL NOT NULL DEFAULT 1,
  created_ms BIGINT NOT NULL
);
CREATE INDEX memories_type ON memories (failure_type, repository, created_ms);

CREATE VIRTUAL TABLE memories_fts USING fts5 (
  failure_type, body,
  content = '',
  tokenize = "unicode61 tokenchars '_'"
);

-- the agent records read a repository's tasks of one failure type; the
-- insights read deliveries by time
CREATE INDEX remediation_tasks_repo_type ON remediation_tasks (repository, failure_type);
CREATE INDEX deliveries_received_ms ON deliveries (received_ms);
