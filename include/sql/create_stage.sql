-- A per-transaction staging table shaped like the target; COPY fills it chunk by chunk.
CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP;
