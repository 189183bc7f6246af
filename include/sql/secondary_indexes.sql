-- The target's indexes that no constraint needs (not unique, not backing a constraint), with the
-- statement that recreates each one exactly (pg_get_indexdef) and its comment: a first load into
-- an empty table that is not swapped drops them, inserts, and builds them again, as pg_restore does.
-- Building an index over sorted rows at once is several times cheaper than inserting a million
-- rows into it one by one.
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class')
FROM pg_index i
WHERE i.indrelid = to_regclass(%(table)s)
  AND NOT i.indisunique
  AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1;
