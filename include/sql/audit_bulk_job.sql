-- The Bulk 2.0 job this attempt created: a retried attempt of the same run resumes it.
UPDATE {schema}.load_audit
SET bulk_job_id = %(job_id)s, bulk_job_query = %(query)s, bulk_job_created_at = %(created_at)s
WHERE audit_id = %(audit_id)s;
