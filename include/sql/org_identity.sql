-- The org this run is for, and any other org already recorded with the Organization Id its login reached.
SELECT org_key, organization_id FROM salesforce_pipeline.orgs
WHERE org_key = %(org)s OR organization_id = %(organization_id)s;
