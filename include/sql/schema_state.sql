-- Which version of schema.sql the org's schema is at, or null when any table is missing. Reads
-- the catalog only: to_regclass and obj_description take no lock, so a run with nothing to change
-- never waits behind (or blocks) a reader's open transaction. Names are qualified, e.g. "salesforce_acme.account".
SELECT CASE
    WHEN to_regclass(%(account)s) IS NULL
      OR to_regclass(%(contact)s) IS NULL
      OR to_regclass(%(load_rejects)s) IS NULL
      OR to_regclass(%(load_audit)s) IS NULL THEN NULL
    ELSE obj_description(to_regclass(%(load_audit)s), 'pg_class')
END;
