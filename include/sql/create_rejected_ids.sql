-- Ids of records this run rejected (kept in load_rejects). A full refresh must not mark their
-- rows deleted: Salesforce still has them, they just could not be loaded this time.
CREATE TEMP TABLE IF NOT EXISTS {rejected} (id varchar(18) NOT NULL) ON COMMIT DROP;
