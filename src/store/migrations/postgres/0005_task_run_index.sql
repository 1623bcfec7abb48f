-- 5: task lookups by run answer the newest task from the index: the
-- run index is ordered by creation, and run-level tasks (job IS NULL)
-- have their own partial index, so a run with many job tasks is not
-- scanned for its one run-level task.
DROP INDEX remediation_tasks_run;
CREATE INDEX remediation_tasks_run ON remediation_tasks (repository, run_id, created_ms);
CREATE INDEX remediation_tasks_run_level ON remediation_tasks (repository, run_id, created_ms)
  WHERE job IS NULL;
