-- The records a column refresh read again (column_refresh.py): Id, SystemModstamp and
-- the refreshed fields, typed as the target has them, gone at the end of the transaction.
CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {columns} FROM {target} WITH NO DATA;
