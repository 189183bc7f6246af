-- An attempt that ended without recording its outcome (its worker was killed, or its database
-- session died): closed by the next run of the object, with the reason.
UPDATE {schema}.load_audit
SET status = 'failed', finished_at = %(closed_at)s, error = %(error)s
WHERE audit_id = %(audit_id)s AND status = 'running';
