-- Only the refreshed columns, only existing rows, only where a value differs, and never a row a
-- later load wrote (its SystemModstamp is newer than the one read here: the upsert guard's rule).
UPDATE {target} AS t
SET {assignments}
FROM {stage} AS s
WHERE t.id = s.id
  AND t.system_modstamp <= s.system_modstamp
  AND ({differs});
