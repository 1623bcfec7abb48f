-- 8: claims under leases, and a failure key with one task. A claimed
-- delivery names its claimer (claimed_by) and is held until
-- lease_until_ms, which the claimer renews while it lives; a processing
-- delivery whose lease ran out is claimed again (deliveries left
-- processing by an older healer have an expired lease). A task's
-- dedup_key (its failure key) is unique, the last line of dedup between
-- replicas: of tasks sharing a key, the first keeps it. Recent tasks are
-- listed by creation time.
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
ALTER TABLE deliveries ADD COLUMN lease_until_ms BIGINT;
UPDATE deliveries SET lease_until_ms = 0 WHERE state = 'processing';
CREATE INDEX deliveries_leased ON deliveries (lease_until_ms) WHERE state = 'processing';

UPDATE remediation_tasks SET dedup_key = NULL
  WHERE dedup_key IS NOT NULL AND task_id <> (
    SELECT t.task_id FROM remediation_tasks t WHERE t.dedup_key = remediation_tasks.dedup_key
    ORDER BY t.created_ms, t.task_id LIMIT 1);
DROP INDEX remediation_tasks_dedup;
CREATE UNIQUE INDEX remediation_tasks_key ON remediation_tasks (dedup_key);
CREATE INDEX remediation_tasks_created ON remediation_tasks (created_ms);
