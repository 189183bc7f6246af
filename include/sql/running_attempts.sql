-- Other attempts of this object that are recorded as running.
SELECT audit_id, dag_run_id, try_number, started_at
FROM {schema}.load_audit
WHERE sobject = %(sobject)s AND status = 'running' AND audit_id <> %(audit_id)s
ORDER BY audit_id;
