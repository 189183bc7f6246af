-- A table's shape as a swap must keep it: its columns in order (type, NOT NULL, collation,
-- default, generated, storage, statistics target), its constraints and indexes (definitions
-- without their names or table), its storage options and persistence. Each object is named as
-- it will be after the swap: a successor's index or constraint built as <prefix>_i<oid> or
-- <prefix>_c<oid> (table_swap) takes the name of the target's index or constraint of that OID.
-- Rows: (kind, name after the swap, definition, name now).
WITH t AS (SELECT c.* FROM pg_class c WHERE c.oid = to_regclass(%(table)s)),
own_index AS (
    SELECT i.indexrelid, ic.relname::text AS now, i.indisunique,
           pg_get_indexdef(i.indexrelid) AS definition,
           format('CREATE %%sINDEX %%s ON %%s.%%s', CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END,
                  quote_ident(ic.relname), quote_ident(n.nspname), quote_ident(t.relname)) AS head,
           ic.reltablespace
    FROM t JOIN pg_index i ON i.indrelid = t.oid
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = t.oid)
)
SELECT 'column', a.attname::text,
       concat_ws(' | ', row_number() OVER (ORDER BY a.attnum), format_type(a.atttypid, a.atttypmod),
                 a.attnotnull, a.attcollation, pg_get_expr(d.adbin, d.adrelid), a.attgenerated,
                 a.attidentity, a.attstorage, a.attcompression, a.attstattarget, a.attoptions::text),
       a.attname::text
FROM t JOIN pg_attribute a ON a.attrelid = t.oid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', coalesce(original.conname::text, k.conname::text),
       k.contype::text || ' ' || pg_get_constraintdef(k.oid), k.conname::text
FROM t JOIN pg_constraint k ON k.conrelid = t.oid
LEFT JOIN pg_constraint original
  ON starts_with(k.conname, %(prefix)s || '_c')
 AND original.oid = CASE WHEN substr(k.conname, length(%(prefix)s) + 3) ~ '^[0-9]+$'
                        THEN substr(k.conname, length(%(prefix)s) + 3)::oid END
UNION ALL
SELECT 'index', coalesce(original.relname::text, x.now),
       concat_ws(' | ', x.indisunique, x.reltablespace,
                 CASE WHEN starts_with(x.definition, x.head) THEN substr(x.definition, length(x.head) + 1)
                      ELSE x.definition END),
       x.now
FROM own_index x
LEFT JOIN pg_class original
  ON starts_with(x.now, %(prefix)s || '_i')
 AND original.oid = CASE WHEN substr(x.now, length(%(prefix)s) + 3) ~ '^[0-9]+$'
                        THEN substr(x.now, length(%(prefix)s) + 3)::oid END
UNION ALL
SELECT 'table', '', concat_ws(' | ', t.relpersistence, t.reloptions::text), t.relname::text FROM t
ORDER BY 1, 2;
