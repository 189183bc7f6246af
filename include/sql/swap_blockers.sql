-- Why the target cannot be swapped for a successor built beside it (no rows: it can). A swap
-- drops the old table: anything bound to its OID (a view, a foreign key, a trigger, a policy, a
-- publication, a function over its row type) would be dropped with it or make the DROP fail, and
-- what CREATE TABLE ... LIKE does not copy (partitioning, inheritance, identity sequences,
-- extended statistics, tablespace, replica identity, access method) would be lost silently.
-- Such a table is loaded in place (staged_load: insert then index) instead.
WITH t AS (SELECT c.* FROM pg_class c WHERE c.oid = to_regclass(%(table)s))
SELECT 'it does not exist' WHERE to_regclass(%(table)s) IS NULL
UNION ALL
SELECT 'it is not a plain logged table' FROM t WHERE t.relkind <> 'r' OR t.relpersistence <> 'p'
UNION ALL
SELECT 'it is a partition, or inherits or is inherited' FROM t
WHERE t.relispartition OR EXISTS (SELECT 1 FROM pg_inherits i WHERE t.oid IN (i.inhrelid, i.inhparent))
UNION ALL
SELECT format('it is owned by %%s, not by %%s', pg_get_userbyid(t.relowner), current_user) FROM t
WHERE pg_get_userbyid(t.relowner) <> current_user
UNION ALL
SELECT format('a privilege on it was granted by %%s, not by its owner', pg_get_userbyid(a.grantor))
FROM t, LATERAL aclexplode(t.relacl) a WHERE a.grantor <> t.relowner
UNION ALL
SELECT format('a privilege on column %%I was granted by %%s, not by its owner', c.attname,
              pg_get_userbyid(a.grantor))
FROM t JOIN pg_attribute c ON c.attrelid = t.oid, LATERAL aclexplode(c.attacl) a
WHERE a.grantor <> t.relowner
UNION ALL
SELECT format('trigger %%I', g.tgname) FROM t JOIN pg_trigger g ON g.tgrelid = t.oid WHERE NOT g.tgisinternal
UNION ALL
SELECT 'row-level security' FROM t
WHERE t.relrowsecurity OR t.relforcerowsecurity OR EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = t.oid)
UNION ALL
SELECT format('rule %%I', r.rulename) FROM t JOIN pg_rewrite r ON r.ev_class = t.oid
UNION ALL
SELECT format('publication %%I', p.pubname) FROM t, pg_publication p
WHERE p.puballtables
   OR EXISTS (SELECT 1 FROM pg_publication_rel r WHERE r.prpubid = p.oid AND r.prrelid = t.oid)
   OR EXISTS (SELECT 1 FROM pg_publication_namespace n WHERE n.pnpubid = p.oid AND n.pnnspid = t.relnamespace)
UNION ALL
SELECT format('foreign key %%I', k.conname) FROM t JOIN pg_constraint k ON t.oid IN (k.conrelid, k.confrelid)
WHERE k.contype = 'f'
UNION ALL
-- Views (their rules), functions over its row type, other tables' columns of that type...
SELECT format('%%s depends on it', pg_describe_object(d.classid, d.objid, d.objsubid))
FROM t JOIN pg_depend d
  ON (d.refclassid = 'pg_class'::regclass AND d.refobjid = t.oid)
  OR (d.refclassid = 'pg_type'::regclass AND d.refobjid IN (t.reltype, (SELECT typarray FROM pg_type WHERE oid = t.reltype)))
WHERE d.deptype = 'n'
  AND NOT (d.classid = 'pg_constraint'::regclass
           AND d.objid IN (SELECT k.oid FROM pg_constraint k WHERE k.conrelid = t.oid AND k.contype <> 'f'))
UNION ALL
SELECT format('statistics object %%I', s.stxname) FROM t JOIN pg_statistic_ext s ON s.stxrelid = t.oid
UNION ALL
SELECT format('identity column %%I', a.attname) FROM t JOIN pg_attribute a ON a.attrelid = t.oid
WHERE a.attidentity <> '' AND NOT a.attisdropped
UNION ALL
SELECT 'its tablespace, replica identity or table access method is not the default' FROM t
WHERE t.reltablespace <> 0 OR t.relreplident <> 'd' OR t.relam <> (SELECT oid FROM pg_am WHERE amname = 'heap');
