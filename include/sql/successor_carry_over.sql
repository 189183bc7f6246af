-- What the successor takes over from the target just before the swap, while both exist (under the
-- object's lock, so it is what the target has now): the sequences the target's columns own (a
-- serial's: the successor's default calls it, so it must not be dropped with the old table),
-- the comments on the table, its columns, constraints and indexes, the CLUSTER mark, and the
-- privileges, exactly (the successor's own first revoked). Both tables have the same owner
-- (swap_blockers.sql). Statements in the order they must run.
WITH t AS (SELECT c.* FROM pg_class c WHERE c.oid = to_regclass(%(table)s)),
s AS (SELECT c.* FROM pg_class c WHERE c.oid = to_regclass(%(successor)s)),
-- The target's indexes under the successor's names for them (as successor_build_statements.sql).
own_index AS (
    SELECT i.indexrelid, i.indisclustered,
           coalesce(%(prefix)s || '_c' || k.oid, %(prefix)s || '_i' || i.indexrelid) AS successor_name
    FROM t JOIN pg_index i ON i.indrelid = t.oid
    LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = t.oid
),
statement (step, text) AS (
    SELECT 1, format('ALTER SEQUENCE %%s OWNED BY %%s.%%I', d.objid::regclass, s.oid::regclass, a.attname)
    FROM t CROSS JOIN s
    JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = t.oid AND d.refobjsubid > 0
     AND d.classid = 'pg_class'::regclass AND d.deptype = 'a'
    JOIN pg_class q ON q.oid = d.objid AND q.relkind = 'S'
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
    UNION ALL
    SELECT 2, format('COMMENT ON TABLE %%s IS %%L', s.oid::regclass, obj_description(t.oid, 'pg_class'))
    FROM t CROSS JOIN s
    UNION ALL
    SELECT 2, format('COMMENT ON COLUMN %%s.%%I IS %%L', s.oid::regclass, a.attname, col_description(t.oid, a.attnum))
    FROM t CROSS JOIN s JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 2, format('COMMENT ON CONSTRAINT %%I ON %%s IS %%L',
                     CASE WHEN k.contype IN ('p', 'u', 'x') THEN %(prefix)s || '_c' || k.oid ELSE k.conname END,
                     s.oid::regclass, obj_description(k.oid, 'pg_constraint'))
    FROM t CROSS JOIN s JOIN pg_constraint k ON k.conrelid = t.oid
    UNION ALL
    SELECT 2, format('COMMENT ON INDEX %%I.%%I IS %%L', s.relnamespace::regnamespace, x.successor_name,
                     obj_description(x.indexrelid, 'pg_class'))
    FROM s CROSS JOIN own_index x
    UNION ALL
    SELECT 2, format('ALTER TABLE %%s CLUSTER ON %%I', s.oid::regclass, x.successor_name)
    FROM s CROSS JOIN own_index x WHERE x.indisclustered
    UNION ALL
    SELECT DISTINCT 3, format('REVOKE ALL ON %%s FROM %%s', s.oid::regclass,
                              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END)
    FROM s, LATERAL aclexplode(coalesce(s.relacl, acldefault('r', s.relowner))) a
    UNION ALL
    SELECT 4, format('GRANT %%s ON %%s TO %%s%%s', a.privilege_type, s.oid::regclass,
                     CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                     CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
    FROM t CROSS JOIN s, LATERAL aclexplode(coalesce(t.relacl, acldefault('r', t.relowner))) a
    UNION ALL
    SELECT 4, format('GRANT %%s (%%I) ON %%s TO %%s%%s', a.privilege_type, c.attname, s.oid::regclass,
                     CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                     CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
    FROM t CROSS JOIN s JOIN pg_attribute c ON c.attrelid = t.oid, LATERAL aclexplode(c.attacl) a
)
SELECT text FROM statement ORDER BY step;
