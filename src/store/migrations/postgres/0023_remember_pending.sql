-- 23: a task ending succeeded or escalated is to be remembered (its note
-- in the memory, contract section 10): set in the transaction that ends it,
-- cleared once the memory is written, so a process that dies (or a memory
-- write that fails) in between leaves it for the loop's next pass.
ALTER TABLE remediation_tasks ADD COLUMN remember_pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX remediation_tasks_remember ON remediation_tasks (task_id)
    WHERE remember_pending = 1;
