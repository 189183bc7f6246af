-- Sweep: rows still live in the table whose Id Salesforce no longer lists at all (hard-deleted,
-- or purged from the recycle bin). Kept, and marked deleted. Only rows written before the sweep
-- began: the sweep holds the object's lock from its listing to its commit, so no load can write
-- in between, but a row written by a run that began after the sweep did (or by hand) was not
-- compared with this listing and is left for the next sweep, as mark_missing_deleted.sql does.
UPDATE {target} AS t
SET is_deleted = true, _extracted_at = %(extracted_at)s, _dag_run_id = %(dag_run_id)s
WHERE NOT t.is_deleted
  AND t._extracted_at < %(extracted_at)s
  AND NOT EXISTS (SELECT 1 FROM {listed} s WHERE s.id = t.id);
