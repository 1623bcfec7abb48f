-- 17: an escalation is keyed by its round (ref: the number of the attempt
-- after which the task was escalated), so the round after a /healer retry
-- is told again. Escalations enqueued before kept ref '': each takes the
-- round it belonged to (the last attempt started before it was enqueued),
-- so a driver that enqueued part of one and died is finished without the
-- channels it reached hearing it twice.
UPDATE notifications SET ref = COALESCE(
    (SELECT CAST(MAX(a.n) AS TEXT) FROM attempts a
      WHERE a.task_id = notifications.task_id AND a.started_ms <= notifications.created_ms),
    (SELECT CAST(t.attempts AS TEXT) FROM remediation_tasks t
      WHERE t.task_id = notifications.task_id),
    '')
  WHERE kind = 'escalation' AND ref = '';
