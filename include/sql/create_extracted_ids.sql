-- Every Id this run extracted, with its system_modstamp, for the post-load verification and,
-- on a full refresh, for finding rows that no longer exist in Salesforce.
CREATE TEMP TABLE IF NOT EXISTS {extracted} (
    id               varchar(18) PRIMARY KEY,
    system_modstamp  timestamptz NOT NULL
) ON COMMIT DROP;
