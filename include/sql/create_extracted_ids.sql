-- Every Id this run extracted, with its system_modstamp, for the post-load verification and,
-- on a full refresh, for finding rows that no longer exist in Salesforce. Append-only, with no
-- index: a chunk's Ids are added by a plain INSERT, and the three questions asked of the table
-- at the end (verify, count, mark missing) are each one hash join or aggregate over it.
CREATE TEMP TABLE IF NOT EXISTS {extracted} (
    id               varchar(18) NOT NULL,
    system_modstamp  timestamptz NOT NULL
) ON COMMIT DROP;
