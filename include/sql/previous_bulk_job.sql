-- The newest Bulk 2.0 job an earlier attempt of this run created for the same query, unless a
-- load of the object succeeded after the job was created: the job's snapshot is then older than
-- rows in the table, and a full refresh would take what it lacks for deletions.
SELECT a.bulk_job_id, a.bulk_job_created_at
FROM {schema}.load_audit a
WHERE a.dag_run_id = %(dag_run_id)s AND a.sobject = %(sobject)s AND a.bulk_job_query = %(query)s
  AND a.bulk_job_id IS NOT NULL AND a.audit_id <> %(audit_id)s
  AND NOT EXISTS (
      SELECT 1 FROM {schema}.load_audit s
      WHERE s.sobject = a.sobject AND s.status = 'success' AND s.finished_at > a.bulk_job_created_at
  )
ORDER BY a.audit_id DESC
LIMIT 1;
