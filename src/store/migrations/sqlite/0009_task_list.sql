-- 9: listing tasks newest first, filtered by state, repository, agent or
-- failure type, one page at a time (keyset pagination on created_ms,
-- task_id), without scanning the table.
DROP INDEX remediation_tasks_created;
CREATE INDEX remediation_tasks_created ON remediation_tasks (created_ms, task_id);
CREATE INDEX remediation_tasks_state_created ON remediation_tasks (state, created_ms, task_id);
CREATE INDEX remediation_tasks_repo_created ON remediation_tasks (repository, created_ms, task_id);
CREATE INDEX remediation_tasks_agent_created ON remediation_tasks (agent, created_ms, task_id);
