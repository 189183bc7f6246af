-- When the object's formula and roll-up fields were last read again (calculated.py).
SELECT max(finished_at) FROM {schema}.load_audit
WHERE sobject = %(sobject)s AND status = 'success' AND mode = 'calculated_refresh';
