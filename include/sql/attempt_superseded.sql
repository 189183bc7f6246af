-- Run inside the apply transaction, just before its commit: has a later try of this task started?
-- Then this one is a zombie (a worker that froze and woke up) and must commit nothing.
SELECT EXISTS (
    SELECT 1 FROM {schema}.load_audit
    WHERE dag_run_id = %(dag_run_id)s AND sobject = %(sobject)s AND (mode = 'sweep') = %(sweep)s
      AND audit_id > %(audit_id)s
);
