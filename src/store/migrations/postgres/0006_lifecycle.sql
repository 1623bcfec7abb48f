-- 6: the lifecycle as types. A delivery counts claims (a worker taking
-- it), may wait until not_before_ms before the next claim, and carries
-- its failure key and the decision answered for it. A task has a state
-- from the lifecycle (queued, running, verifying, succeeded, escalated,
-- stopped, skipped) with a reason, the number of its current attempt and
-- its end time; an attempt has a kind (agent or rerun), a phase and what
-- its CodeRun reported.
ALTER TABLE deliveries RENAME COLUMN attempts TO claims;
ALTER TABLE deliveries ADD COLUMN not_before_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN failure_key TEXT;
ALTER TABLE deliveries ADD COLUMN decision_json TEXT;

ALTER TABLE remediation_tasks RENAME COLUMN status TO state;
ALTER TABLE remediation_tasks ADD COLUMN reason TEXT;
ALTER TABLE remediation_tasks ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE remediation_tasks ADD COLUMN finished_ms BIGINT;
UPDATE remediation_tasks SET
  reason = CASE state WHEN 'decided' THEN 'decide_only'
                      WHEN 'existing' THEN 'existing' ELSE reason END,
  state = CASE state WHEN 'claimed' THEN 'running'
                     WHEN 'dispatched' THEN 'running'
                     WHEN 'decided' THEN 'skipped'
                     WHEN 'existing' THEN 'skipped' ELSE state END;
UPDATE remediation_tasks SET attempts = 1
  WHERE EXISTS (SELECT 1 FROM attempts a WHERE a.task_id = remediation_tasks.task_id);

ALTER TABLE attempts ADD COLUMN kind TEXT NOT NULL DEFAULT 'agent';
ALTER TABLE attempts ADD COLUMN phase TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE attempts ADD COLUMN reason TEXT;
ALTER TABLE attempts ADD COLUMN status_message TEXT;
ALTER TABLE attempts ADD COLUMN pr_url TEXT;
UPDATE attempts SET phase = 'done' WHERE outcome IS NOT NULL;
