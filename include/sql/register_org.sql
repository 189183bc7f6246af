-- The org's row in the shared list, so the status view shows it from its first run on, even
-- when that run fails at the login. The Organization Id is left to the first login.
INSERT INTO salesforce_pipeline.orgs (org_key, schema_name, salesforce_conn_id)
VALUES (%(org)s, %(schema)s, %(conn_id)s)
ON CONFLICT (org_key) DO UPDATE
SET schema_name = EXCLUDED.schema_name, salesforce_conn_id = EXCLUDED.salesforce_conn_id
WHERE (orgs.schema_name, orgs.salesforce_conn_id) IS DISTINCT FROM (EXCLUDED.schema_name, EXCLUDED.salesforce_conn_id);
