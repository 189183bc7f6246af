-- Where one slice's rows wait for the apply: the pipeline's columns, typed as the target has them,
-- no constraints. UNLOGGED: not written to the WAL (the rows can be read again from Salesforce);
-- after a server crash PostgreSQL empties it, which the checkpoint notices (staged counts differ).
-- Not vacuumed: it only grows, until it is merged and dropped.
CREATE UNLOGGED TABLE IF NOT EXISTS {stage} WITH (autovacuum_enabled = false)
    AS SELECT {columns} FROM {target} WITH NO DATA;
