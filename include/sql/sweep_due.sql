-- When the object was last compared whole with Salesforce: a sweep, or a full refresh (which
-- reads every record and marks the missing ones deleted, so it does a sweep's work too).
SELECT max(finished_at) FROM {schema}.load_audit
WHERE sobject = %(sobject)s AND status = 'success' AND mode IN ('sweep', 'full_refresh');
