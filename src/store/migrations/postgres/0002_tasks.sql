-- 2: remediation tasks, attempts, outcomes.
CREATE TABLE remediation_tasks (
  task_id TEXT PRIMARY KEY,
  dedup_key TEXT,
  repository TEXT,
  run_id BIGINT,
  job TEXT,
  branch TEXT,
  agent TEXT,
  failure_type TEXT,
  status TEXT NOT NULL,
  coderun_name TEXT,
  decision_json TEXT,
  created_ms BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL
);
CREATE INDEX remediation_tasks_dedup ON remediation_tasks (dedup_key);

CREATE TABLE attempts (
  task_id TEXT NOT NULL,
  n INTEGER NOT NULL,
  agent TEXT,
  coderun_name TEXT,
  outcome TEXT,
  started_ms BIGINT NOT NULL,
  finished_ms BIGINT,
  PRIMARY KEY (task_id, n)
);

CREATE TABLE outcomes (
  id BIGSERIAL PRIMARY KEY,
  task_id TEXT,
  delivery_id TEXT,
  outcome TEXT NOT NULL,
  detail TEXT,
  recorded_ms BIGINT NOT NULL
);
CREATE INDEX outcomes_task ON outcomes (task_id);
