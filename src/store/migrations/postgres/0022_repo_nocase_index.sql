-- 22: the task list filtered by repository (compared without case, as the
-- dashboard's filter is), newest first, read from an index on the same
-- expression instead of scanning every task.
CREATE INDEX remediation_tasks_repo_lower_created
    ON remediation_tasks (lower(repository), created_ms, task_id);
