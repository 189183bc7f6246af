-- The warehouse schema. Every statement is idempotent, but some (CREATE INDEX IF NOT EXISTS,
-- ALTER TABLE) lock a table even when there is nothing to do, so it runs only when the catalog
-- says the schema is not at this version (warehouse.apply_schema, include/sql/schema_state.sql),
-- and under a short lock_timeout with retries.
-- Column names are the Salesforce API names in snake_case; types follow describe
-- (datetime -> timestamptz, currency/double/percent -> numeric so values stay exact).
-- (The schema itself is created by create_schema.sql, or by loader_role.sql for a least-privilege
-- loader that owns it.)

CREATE TABLE IF NOT EXISTS {schema}.account (
    id                   varchar(18) PRIMARY KEY,
    name                 text,
    type                 text,
    parent_id            varchar(18),
    industry             text,
    annual_revenue       numeric,
    number_of_employees  bigint,
    billing_street       text,
    billing_city         text,
    billing_state        text,
    billing_postal_code  text,
    billing_country      text,
    shipping_street      text,
    shipping_city        text,
    shipping_state       text,
    shipping_postal_code text,
    shipping_country     text,
    phone                text,
    website              text,
    account_source       text,
    description          text,
    owner_id             varchar(18),
    created_date         timestamptz,
    last_modified_date   timestamptz,
    system_modstamp      timestamptz NOT NULL,
    is_deleted           boolean NOT NULL,
    -- lineage: when this row was last written, and by which DAG run
    _extracted_at        timestamptz NOT NULL,
    _dag_run_id          text NOT NULL
);

CREATE TABLE IF NOT EXISTS {schema}.contact (
    id                     varchar(18) PRIMARY KEY,
    account_id             varchar(18),
    salutation             text,
    first_name             text,
    last_name              text,
    name                   text,
    email                  text,
    title                  text,
    department             text,
    phone                  text,
    mobile_phone           text,
    mailing_street         text,
    mailing_city           text,
    mailing_state          text,
    mailing_postal_code    text,
    mailing_country        text,
    lead_source            text,
    birthdate              date,
    has_opted_out_of_email boolean,
    description            text,
    owner_id               varchar(18),
    created_date           timestamptz,
    last_modified_date     timestamptz,
    system_modstamp        timestamptz NOT NULL,
    is_deleted             boolean NOT NULL,
    _extracted_at          timestamptz NOT NULL,
    _dag_run_id            text NOT NULL
);

CREATE INDEX IF NOT EXISTS account_system_modstamp_idx ON {schema}.account (system_modstamp);
CREATE INDEX IF NOT EXISTS contact_system_modstamp_idx ON {schema}.contact (system_modstamp);
CREATE INDEX IF NOT EXISTS contact_account_id_idx ON {schema}.contact (account_id);

-- One row per object per run: what was extracted and loaded, and how it ended.
CREATE TABLE IF NOT EXISTS {schema}.load_audit (
    audit_id          bigserial PRIMARY KEY,
    dag_run_id        text NOT NULL,
    sobject           text NOT NULL,
    mode              text NOT NULL,           -- incremental | full_refresh
    method            text,                    -- rest | bulk2
    window_start      timestamptz,             -- null on a full refresh: all of history
    window_end        timestamptz NOT NULL,
    extracted         bigint NOT NULL DEFAULT 0,
    upserted          bigint NOT NULL DEFAULT 0,
    deleted           bigint NOT NULL DEFAULT 0,
    rejected          bigint NOT NULL DEFAULT 0,
    api_calls         integer NOT NULL DEFAULT 0,
    api_usage_after   text,                    -- Sforce-Limit-Info figures, e.g. 1234/15000
    salesforce_count  bigint,
    count_difference  bigint,
    count_note        text,
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    status            text NOT NULL,           -- running | success | failed
    error             text
);
-- Added after the first release (existing warehouses get them here, with no migration step).
ALTER TABLE {schema}.load_audit
    ADD COLUMN IF NOT EXISTS try_number integer,              -- the Airflow task attempt
    ADD COLUMN IF NOT EXISTS bulk_job_id text,                -- so a retried attempt can reuse the job
    ADD COLUMN IF NOT EXISTS bulk_job_query text,
    ADD COLUMN IF NOT EXISTS bulk_job_created_at timestamptz,
    ADD COLUMN IF NOT EXISTS live_salesforce bigint,          -- the object's live records in Salesforce
    ADD COLUMN IF NOT EXISTS live_warehouse bigint,           -- and live rows in the table, after the load
    ADD COLUMN IF NOT EXISTS live_difference bigint,          -- warehouse minus Salesforce (drift)
    ADD COLUMN IF NOT EXISTS loader_pid integer,              -- the attempt's database sessions, so a
    ADD COLUMN IF NOT EXISTS audit_pid integer;               -- later try can end a frozen worker's
CREATE INDEX IF NOT EXISTS load_audit_object_status_idx ON {schema}.load_audit (sobject, status);

-- Records that could not be loaded, kept with their raw JSON and the reason, never dropped.
CREATE TABLE IF NOT EXISTS {schema}.load_rejects (
    reject_id    bigserial PRIMARY KEY,
    dag_run_id   text NOT NULL,
    sobject      text NOT NULL,
    record_id    text,
    reason       text NOT NULL,
    raw_record   text NOT NULL,               -- text, not jsonb: jsonb cannot hold \u0000
    rejected_at  timestamptz NOT NULL DEFAULT now()
);

-- The Salesforce fields each table carries, as describe last showed them: how a run tells a field
-- that appeared, disappeared or changed type (schema_drift.py). A field that disappears keeps its
-- row (present = false) and its column, values and all.
CREATE TABLE IF NOT EXISTS {schema}.field_catalog (
    sobject      text NOT NULL,
    field        text NOT NULL,
    column_name  text NOT NULL,
    kind         text NOT NULL,                -- the pipeline's kind (text, numeric, datetime...)
    salesforce_type text NOT NULL,             -- describe's type (string, double, picklist...)
    calculated   boolean NOT NULL DEFAULT false,  -- a formula or roll-up field
    present      boolean NOT NULL DEFAULT true,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sobject, field)
);
-- Every change of a table's fields, once: added (and back-filled), removed, retyped (and widened).
CREATE TABLE IF NOT EXISTS {schema}.schema_changes (
    change_id    bigserial PRIMARY KEY,
    org          text NOT NULL,
    sobject      text NOT NULL,
    field        text NOT NULL,
    column_name  text NOT NULL,
    change       text NOT NULL,                -- added | removed | retyped | restored
    detail       text,
    changed_at   timestamptz NOT NULL DEFAULT now(),
    dag_run_id   text NOT NULL
);
-- A large load's progress, so that a retried or rerun task resumes instead of starting over
-- (checkpoint.py). One row per (object, DAG run) being extracted; its slices below. The rows
-- a slice staged wait in UNLOGGED stage tables (or, on a first load, in the table's successor)
-- until the apply moves them into the target in one short transaction, which also deletes the
-- checkpoint.
CREATE TABLE IF NOT EXISTS {schema}.load_checkpoint (
    checkpoint_id  bigserial PRIMARY KEY,
    sobject        text NOT NULL,
    dag_run_id     text NOT NULL,
    fingerprint    text NOT NULL,              -- mode, window and columns: a change starts over
    method         text NOT NULL,              -- rest | bulk2, kept by a resumed load
    extracted_at   timestamptz NOT NULL,       -- when the first attempt began extracting
    owner_audit_id bigint,                     -- the attempt staging now; an older one is fenced off
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (sobject, dag_run_id)
);
-- A first load's slices (all but the one reaching up to now) COPY straight into the table's
-- successor (table_swap.py) instead of UNLOGGED stages: the checkpoint says so, for its retries.
ALTER TABLE {schema}.load_checkpoint
    ADD COLUMN IF NOT EXISTS into_successor boolean NOT NULL DEFAULT false;
CREATE TABLE IF NOT EXISTS {schema}.load_checkpoint_slice (
    checkpoint_id  bigint NOT NULL REFERENCES {schema}.load_checkpoint ON DELETE CASCADE,
    slice_no       integer NOT NULL,
    lower_bound    timestamptz,                -- SystemModstamp >= lower_bound (null: no bound)
    upper_bound    timestamptz,                -- SystemModstamp <  upper_bound (null: no bound)
    expected       bigint NOT NULL,            -- COUNT() when the slices were planned
    staged         bigint NOT NULL DEFAULT 0,  -- records staged so far (rejects included)
    done           boolean NOT NULL DEFAULT false,
    bulk_job_id    text,                       -- the slice's Bulk 2.0 job, reused on resume
    resume_at      text,                       -- next Bulk locator or REST nextRecordsUrl
    attempts       integer NOT NULL DEFAULT 0,   -- times the slice was started
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (checkpoint_id, slice_no)
);
-- A REST slice reads its records in Id order: the last Id it committed lets it query on from
-- there when Salesforce no longer has its cursor, instead of reading everything again.
ALTER TABLE {schema}.load_checkpoint_slice ADD COLUMN IF NOT EXISTS last_id text;
-- The catalog's record of which version of this file the schema is at (see schema_state.sql).
COMMENT ON TABLE {schema}.load_audit IS %(version)s;
