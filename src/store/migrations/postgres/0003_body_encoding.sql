-- 3: bodies may be stored deflated (zlib; body_size is the raw size);
-- indexes for task lookups. Bodies are compressed by healer already, so
-- PostgreSQL stores them out of line without trying to compress again.
ALTER TABLE deliveries ADD COLUMN body_encoding TEXT NOT NULL DEFAULT 'identity';
ALTER TABLE deliveries ADD COLUMN body_size BIGINT;
ALTER TABLE deliveries ALTER COLUMN body SET STORAGE EXTERNAL;

-- task lookups by run and by branch window (hl_store_task_find)
CREATE INDEX remediation_tasks_run ON remediation_tasks (repository, run_id);
CREATE INDEX remediation_tasks_branch ON remediation_tasks (repository, branch, created_ms);
