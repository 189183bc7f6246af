-- Has this object ever loaded successfully? If not, the run does a full refresh by itself.
SELECT max(finished_at) FROM {schema}.load_audit
WHERE sobject = %(sobject)s AND status = 'success' AND mode IN ('incremental', 'full_refresh');
