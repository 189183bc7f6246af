INSERT INTO salesforce.load_audit (dag_run_id, sobject, mode, method, window_start, window_end, started_at, status)
VALUES (%(dag_run_id)s, %(sobject)s, %(mode)s, %(method)s, %(window_start)s, %(window_end)s, %(started_at)s, 'running')
RETURNING audit_id;
