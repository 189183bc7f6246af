-- What the pipeline keeps beside the orgs' own schemas: the list of orgs it has loaded (with the
-- Salesforce Organization Id each one reached first: the cross-tenant guard), and one view of
-- every org's freshness. Created by warehouse.apply_shared_schema when the catalog says it is not
-- at this version; the schema itself by create_schema.sql.
CREATE TABLE IF NOT EXISTS salesforce_pipeline.orgs (
    org_key             text PRIMARY KEY,
    schema_name         text NOT NULL UNIQUE,
    salesforce_conn_id  text NOT NULL,
    organization_id     varchar(18) UNIQUE,      -- recorded at the org's first login; never changed by a run
    registered_at       timestamptz NOT NULL DEFAULT now(),
    organization_seen_at timestamptz
);

-- One row per org and object: is it fresh, stale, broken, or never loaded? `stale_after` is how
-- old the newest loaded data may be (a daily run loads up to midnight UTC, so about a day plus
-- the run's own time is normal). Reads each org's load_audit; orgs whose schema does not exist
-- yet (their first run failed before it) show as never loaded.
CREATE OR REPLACE FUNCTION salesforce_pipeline.org_status_as_of(stale_after interval DEFAULT interval '30 hours')
RETURNS TABLE (
    org                 text,
    schema_name         text,
    organization_id     text,
    sobject             text,
    status              text,          -- fresh | stale | broken | loading | never loaded
    last_success_at     timestamptz,
    loaded_through      timestamptz,   -- the end of the newest successfully loaded window
    freshness_lag       interval,
    rows_upserted       bigint,        -- by the last successful load
    rows_deleted        bigint,
    rows_rejected       bigint,
    live_rows           bigint,        -- live rows in the table after the last successful load
    api_calls_last_run  integer,
    last_attempt_at     timestamptz,
    last_attempt_status text,
    last_error          text
)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    o record;
BEGIN
    FOR o IN SELECT r.org_key, r.schema_name, r.organization_id FROM salesforce_pipeline.orgs r ORDER BY r.org_key LOOP
        IF to_regclass(format('%%I.load_audit', o.schema_name)) IS NULL THEN
            RETURN QUERY SELECT o.org_key, o.schema_name, o.organization_id::text, s.sobject, 'never loaded'::text,
                NULL::timestamptz, NULL::timestamptz, NULL::interval, NULL::bigint, NULL::bigint,
                NULL::bigint, NULL::bigint, NULL::integer, NULL::timestamptz, NULL::text, NULL::text
            FROM (VALUES ('Account'), ('Contact')) s(sobject);
            CONTINUE;
        END IF;
        RETURN QUERY EXECUTE format($q$
            WITH objects(sobject) AS (VALUES ('Account'), ('Contact')),
            ok AS (
                SELECT DISTINCT ON (a.sobject) a.* FROM %%1$I.load_audit a
                WHERE a.status = 'success' AND a.mode IN ('incremental', 'full_refresh')
                ORDER BY a.sobject, a.finished_at DESC
            ),
            latest AS (
                SELECT DISTINCT ON (a.sobject) a.* FROM %%1$I.load_audit a ORDER BY a.sobject, a.audit_id DESC
            ),
            -- A backfill of older days finishes last but loads older data: freshness is the
            -- newest window any successful load covered.
            thru AS (
                SELECT a.sobject, max(a.window_end) AS loaded_through FROM %%1$I.load_audit a
                WHERE a.status = 'success' AND a.mode IN ('incremental', 'full_refresh')
                GROUP BY a.sobject
            )
            SELECT $1, $2, $3::text, objects.sobject,
                CASE
                    WHEN latest.status = 'failed' THEN 'broken'
                    WHEN ok.audit_id IS NULL AND latest.status = 'running' THEN 'loading'
                    WHEN ok.audit_id IS NULL THEN 'never loaded'
                    WHEN now() - thru.loaded_through > $4 THEN 'stale'
                    ELSE 'fresh'
                END,
                ok.finished_at, thru.loaded_through, now() - thru.loaded_through, ok.upserted, ok.deleted,
                ok.rejected, ok.live_warehouse, latest.api_calls, latest.started_at, latest.status,
                latest.error
            FROM objects LEFT JOIN ok ON ok.sobject = objects.sobject
            LEFT JOIN latest ON latest.sobject = objects.sobject
            LEFT JOIN thru ON thru.sobject = objects.sobject
        $q$, o.schema_name) USING o.org_key, o.schema_name, o.organization_id, stale_after;
    END LOOP;
END
$fn$;

CREATE OR REPLACE VIEW salesforce_pipeline.org_status AS SELECT * FROM salesforce_pipeline.org_status_as_of();

COMMENT ON TABLE salesforce_pipeline.orgs IS %(version)s;
