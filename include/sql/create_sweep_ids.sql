-- Every record Salesforce has for the object (deleted ones in the recycle bin included), as the
-- sweep listed it: Id, SystemModstamp and IsDeleted only. Gone at commit.
CREATE TEMP TABLE IF NOT EXISTS {listed} (
    id               varchar(18) NOT NULL,
    system_modstamp  timestamptz NOT NULL,
    is_deleted       boolean NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE IF NOT EXISTS {reread} (id varchar(18) NOT NULL, reason text NOT NULL) ON COMMIT DROP;
