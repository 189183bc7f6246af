-- Sweep: rows still live in the table whose Id Salesforce no longer lists at all (hard-deleted,
-- or purged from the recycle bin). Kept, and marked deleted.
UPDATE {target} AS t
SET is_deleted = true, _extracted_at = %(extracted_at)s, _dag_run_id = %(dag_run_id)s
WHERE NOT t.is_deleted
  AND NOT EXISTS (SELECT 1 FROM {listed} s WHERE s.id = t.id);
