-- 12: indexes that keep the per-event reads of history from growing with
-- it. Each CI failure asks whether its job already has an open task, and
-- how each agent did on this repository's failures of its type; both read
-- every task of the repository through the older indexes.
--
-- the open tasks of a job: only queued, running and verifying tasks
CREATE INDEX remediation_tasks_open ON remediation_tasks (repository, workflow, job)
  WHERE state IN ('queued', 'running', 'verifying');
-- the agent records read finished agent attempts by repository; attempts
-- from before the repository was recorded on them take it from their task
UPDATE attempts SET repository = (SELECT t.repository FROM remediation_tasks t
  WHERE t.task_id = attempts.task_id) WHERE repository IS NULL;
CREATE INDEX attempts_agent_finished ON attempts (repository, agent)
  WHERE kind = 'agent' AND agent IS NOT NULL
    AND outcome IN ('success', 'ci_still_failing', 'agent_failed', 'timeout');
