-- One row per attempt, written before the first call to Salesforce so that failures of the
-- login, describe or budget check are recorded too.
INSERT INTO {schema}.load_audit
    (dag_run_id, sobject, mode, method, window_start, window_end, started_at, status, try_number,
     loader_pid, audit_pid)
VALUES
    (%(dag_run_id)s, %(sobject)s, %(mode)s, %(method)s, %(window_start)s, %(window_end)s, %(started_at)s,
     'running', %(try_number)s, %(loader_pid)s, %(audit_pid)s)
RETURNING audit_id;
