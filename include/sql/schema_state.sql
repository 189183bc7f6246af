-- Which version of schema.sql the warehouse is at, or null when any table is missing. Reads the
-- catalog only: to_regclass and obj_description take no lock, so a run with nothing to change
-- never waits behind (or blocks) a reader's open transaction.
SELECT CASE
    WHEN to_regclass('salesforce.account') IS NULL
      OR to_regclass('salesforce.contact') IS NULL
      OR to_regclass('salesforce.load_rejects') IS NULL
      OR to_regclass('salesforce.load_audit') IS NULL THEN NULL
    ELSE obj_description(to_regclass('salesforce.load_audit'), 'pg_class')
END;
