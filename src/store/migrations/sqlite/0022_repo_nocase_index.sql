-- 22: the task list filtered by repository (compared without case, as the
-- dashboard's filter is), newest first, read from an index of the same
-- collation instead of scanning every task.
CREATE INDEX remediation_tasks_repo_nocase_created
    ON remediation_tasks (repository COLLATE NOCASE, created_ms, task_id);
