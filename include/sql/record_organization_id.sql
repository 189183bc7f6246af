-- The first login of an org records which Salesforce org it reached (the unique constraint
-- refuses a second org key reaching the same one, even when two first runs race).
UPDATE salesforce_pipeline.orgs SET organization_id = %(organization_id)s, organization_seen_at = now()
WHERE org_key = %(org)s AND organization_id IS NULL;
