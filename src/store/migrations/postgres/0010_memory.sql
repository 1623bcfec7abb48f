-- 10: memory. One record per finished task (what failed, which agents
-- tried, how it ended, the fix or the escalation) with a weight that grows
-- when it helps a later success; searched by full text (a tsvector of the
-- 'simple' configuration under a GIN index, ranked by ts_rank) within a
-- failure type.
CREATE TABLE memories (
  id BIGSERIAL PRIMARY KEY,
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
  weight DOUBLE PRECISION NOT NULL DEFAULT 1,
  created_ms BIGINT NOT NULL,
  search TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple',
    coalesce(workflow, '') || ' ' || coalesce(job, '') || ' ' || coalesce(evidence, '')
    || ' ' || coalesce(summary, '') || ' ' || coalesce(commits, ''))) STORED
);
CREATE INDEX memories_type ON memories (failure_type, repository, created_ms);
CREATE INDEX memories_search ON memories USING GIN (search);

-- the agent records read a repository's tasks of one failure type; the
-- insights read deliveries by time
CREATE INDEX remediation_tasks_repo_type ON remediation_tasks (repository, failure_type);
CREATE INDEX deliveries_received_ms ON deliveries (received_ms);
