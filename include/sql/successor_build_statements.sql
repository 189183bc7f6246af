-- What builds a successor's constraints and indexes, once its rows are in, from the target's own
-- definitions: a constraint backed by an index (primary key, unique, exclusion) as
-- pg_get_constraintdef writes it, under the name <prefix>_c<oid>; any other index as
-- pg_get_indexdef writes it, moved onto the successor, under the name <prefix>_i<oid>; then the
-- target's storage options. table_swap gives each its original name back at the swap. (CHECK
-- and NOT NULL constraints came with CREATE TABLE ... LIKE, under their own names.) Autovacuum,
-- off while the slices filled it (create_successor.sql), is turned back on before the target's
-- own options are set. An index built already (by a killed attempt's merge) is not built again.
WITH t AS (SELECT c.* FROM pg_class c WHERE c.oid = to_regclass(%(table)s)),
n AS (SELECT nspname FROM pg_namespace, t WHERE pg_namespace.oid = t.relnamespace),
built AS (SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
          WHERE x.indrelid = to_regclass(%(successor)s)),
statements (step, name, statement) AS (
SELECT 1, %(prefix)s || '_c' || k.oid,
       format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', %(successor)s, %(prefix)s || '_c' || k.oid,
              pg_get_constraintdef(k.oid))
FROM t JOIN pg_constraint k ON k.conrelid = t.oid
WHERE k.contype IN ('p', 'u', 'x')
UNION ALL
SELECT 2, %(prefix)s || '_i' || i.indexrelid,
       format('CREATE %%sINDEX %%I ON %%s', CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END,
              %(prefix)s || '_i' || i.indexrelid, %(successor)s)
       || substr(pg_get_indexdef(i.indexrelid),
                 length(format('CREATE %%sINDEX %%s ON %%s.%%s', CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END,
                               quote_ident(ic.relname), quote_ident(n.nspname), quote_ident(t.relname))) + 1)
FROM t CROSS JOIN n JOIN pg_index i ON i.indrelid = t.oid
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = t.oid)
UNION ALL
SELECT 3, NULL, format('ALTER TABLE %%s RESET (autovacuum_enabled, toast.autovacuum_enabled)', %(successor)s)
UNION ALL
SELECT 4, NULL,
       format('ALTER TABLE %%s SET (%%s)', %(successor)s,
              string_agg(format('%%s = %%L', split_part(o, '=', 1), substr(o, strpos(o, '=') + 1)), ', '))
FROM t, unnest(t.reloptions) o
HAVING count(*) > 0)
SELECT statement FROM statements
WHERE name IS NULL OR name NOT IN (SELECT relname FROM built)
ORDER BY step;
