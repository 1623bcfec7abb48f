-- 18: the tasks that ended last, per state (/api/status's recent outcomes):
-- read newest finished first from this index, not sorted from all of them.
CREATE INDEX remediation_tasks_state_finished
    ON remediation_tasks (state, finished_ms DESC NULLS LAST, task_id DESC);
