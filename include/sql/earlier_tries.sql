-- Earlier tries of this attempt's task (same run, object and kind) still recorded as running:
-- Airflow retried the task, so it gave up on them; a frozen worker's try may still hold the
-- object's lock and an open transaction.
SELECT audit_id, try_number, started_at, loader_pid, audit_pid
FROM {schema}.load_audit
WHERE dag_run_id = %(dag_run_id)s AND sobject = %(sobject)s AND (mode = 'sweep') = %(sweep)s
  AND status = 'running' AND audit_id < %(audit_id)s
ORDER BY audit_id;
