-- The target's columns as the catalog has them (no lock taken): name, type as Postgres writes
-- it, NOT NULL, whether Postgres fills it itself (default, identity or generated).
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;
