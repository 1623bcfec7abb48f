-- 16: remediation_tasks_active (0007) and remediation_tasks_open (0012)
-- are the same index; every write of a task kept both up to date.
DROP INDEX remediation_tasks_active;
