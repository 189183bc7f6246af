-- Which version of shared_schema.sql the warehouse is at, or null when it is missing (catalog only, no lock).
SELECT CASE
    WHEN to_regclass('salesforce_pipeline.orgs') IS NULL OR to_regclass('salesforce_pipeline.org_status') IS NULL
    THEN NULL
    ELSE obj_description(to_regclass('salesforce_pipeline.orgs'), 'pg_class')
END;
