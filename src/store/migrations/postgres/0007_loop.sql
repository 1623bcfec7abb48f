-- 7: the remediation loop. A task remembers what it needs to start its
-- next attempt (the originating event, the failing workflow, sha, PR and
-- where the agent pushes), when the loop must look at it again
-- (next_check_ms), which replica drives it (lease_owner until
-- lease_until_ms) and since when it waits for a slot (queued_ms). An
-- attempt remembers what its CodeRun last reported. CI results that
-- belong to a task, the outbox of notifications, and a small key/value
-- table for the watch's resume point.
ALTER TABLE remediation_tasks ADD COLUMN kind TEXT;
ALTER TABLE remediation_tasks ADD COLUMN workflow TEXT;
ALTER TABLE remediation_tasks ADD COLUMN head_sha TEXT;
ALTER TABLE remediation_tasks ADD COLUMN pr_number BIGINT;
ALTER TABLE remediation_tasks ADD COLUMN target_branch TEXT;
ALTER TABLE remediation_tasks ADD COLUMN event_json TEXT;
ALTER TABLE remediation_tasks ADD COLUMN next_check_ms BIGINT;
ALTER TABLE remediation_tasks ADD COLUMN lease_owner TEXT;
ALTER TABLE remediation_tasks ADD COLUMN lease_until_ms BIGINT;
ALTER TABLE remediation_tasks ADD COLUMN queued_ms BIGINT;
CREATE INDEX remediation_tasks_due ON remediation_tasks (next_check_ms)
  WHERE next_check_ms IS NOT NULL;
CREATE INDEX remediation_tasks_queued ON remediation_tasks (queued_ms)
  WHERE state = 'queued';
CREATE INDEX remediation_tasks_active ON remediation_tasks (repository, workflow, job)
  WHERE state IN ('queued', 'running', 'verifying');
CREATE INDEX remediation_tasks_pr ON remediation_tasks (repository, pr_number, created_ms);

ALTER TABLE attempts ADD COLUMN coderun_phase TEXT;
ALTER TABLE attempts ADD COLUMN job_name TEXT;
ALTER TABLE attempts ADD COLUMN pod_name TEXT;
ALTER TABLE attempts ADD COLUMN agent_done_ms BIGINT;
ALTER TABLE attempts ADD COLUMN prompt TEXT;
ALTER TABLE attempts ADD COLUMN repository TEXT;
UPDATE attempts SET coderun_name = NULL WHERE coderun_name = '';
UPDATE remediation_tasks SET coderun_name = NULL WHERE coderun_name = '';
CREATE UNIQUE INDEX attempts_coderun ON attempts (coderun_name);
CREATE INDEX attempts_open ON attempts (phase) WHERE phase IN ('preparing', 'pending', 'running');
CREATE INDEX attempts_repo_started ON attempts (repository, started_ms);

CREATE TABLE ci_results (
  id BIGSERIAL PRIMARY KEY,
  task_id TEXT NOT NULL,
  delivery_id TEXT,
  head_sha TEXT,
  branch TEXT,
  conclusion TEXT NOT NULL,
  run_id BIGINT,
  run_attempt BIGINT,
  job_id BIGINT,
  url TEXT,
  completed_ms BIGINT NOT NULL,
  source TEXT NOT NULL
);
CREATE UNIQUE INDEX ci_results_delivery ON ci_results (task_id, delivery_id);
CREATE INDEX ci_results_task ON ci_results (task_id, completed_ms);

CREATE TABLE notifications (
  id BIGSERIAL PRIMARY KEY,
  task_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  kind TEXT NOT NULL,
  ref TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_ms BIGINT NOT NULL,
  last_error TEXT,
  payload TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  delivered_ms BIGINT
);
CREATE UNIQUE INDEX notifications_once ON notifications (task_id, channel, kind, ref);
CREATE INDEX notifications_due ON notifications (next_ms) WHERE state = 'pending';

CREATE TABLE kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_ms BIGINT NOT NULL
);
