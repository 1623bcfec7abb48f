-- 25: the task id a delivery was answered with, for the deliveries that
-- wait for a worker (GET /api/remediations/{task_id} before the task is
-- written): a partial index, so only waiting deliveries are in it.
CREATE INDEX deliveries_waiting_task ON deliveries (task_id)
    WHERE state IN ('received', 'processing') AND task_id IS NOT NULL;
