-- 26: the latest CI result of a task on one branch (or on none named)
-- found by a seek: the loop asks for it at each step of a task whose agent
-- works on a branch of its own, while the task's workflow run may have
-- recorded thousands of results on the task's branch.
CREATE INDEX ci_results_task_branch ON ci_results (task_id, branch, completed_ms);
