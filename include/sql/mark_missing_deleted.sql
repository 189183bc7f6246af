-- Full refresh only: rows whose Id no longer exists in Salesforce at all (hard-deleted, or
-- purged from the recycle bin) are kept and marked deleted. Rows written after this run's
-- extraction began belong to a newer run and are left alone, and so are rows of records this
-- run extracted but rejected (Salesforce has them; only this version could not be loaded).
UPDATE {target} AS t
SET is_deleted = true, _extracted_at = %(extracted_at)s, _dag_run_id = %(dag_run_id)s
WHERE NOT t.is_deleted
  AND t._extracted_at < %(extraction_started_at)s
  AND NOT EXISTS (SELECT 1 FROM {extracted} e WHERE e.id = t.id)
  AND NOT EXISTS (SELECT 1 FROM {rejected} r WHERE r.id = t.id);
