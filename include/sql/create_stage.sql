-- A per-transaction staging table with the pipeline's columns only, typed as the target has them
-- and with no constraints or defaults: a column the warehouse's users added (an identity, a
-- NOT NULL with a default) is the target's business, filled when the upsert inserts the row.
CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS SELECT {columns} FROM {target} WITH NO DATA;
