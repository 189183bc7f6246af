-- A least-privilege role for the pipeline's loader: it can connect, create schemas (one per org,
-- and salesforce_pipeline) and write in the ones it owns, use temporary tables for staging, and
-- nothing else: no other schema's tables, no public, no roles or databases. Run once by
-- an administrator, e.g.
--   psql -v ON_ERROR_STOP=1 "$ADMIN_URL" ... (or through tools that fill in the placeholders):
-- {role}, {database} are identifiers and %(password)s a parameter, filled in by psycopg2.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(role_name)s) THEN
        EXECUTE format('CREATE ROLE %%I LOGIN', %(role_name)s);
    END IF;
END $$;
ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD %(password)s;
-- CREATE on the database is what CREATE SCHEMA needs: adding an org to the registry creates
-- its schema without an administrator.
GRANT CONNECT, TEMPORARY, CREATE ON DATABASE {database} TO {role};
-- Nothing in public: PostgreSQL 15 already denies CREATE there to PUBLIC; older servers do not.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS salesforce AUTHORIZATION {role};
ALTER SCHEMA salesforce OWNER TO {role};
