-- Statistics for a table just filled (a temporary table has none until analysed): without them
-- the planner guesses its size, and may pick a nested anti-join that scans it once per target row.
ANALYZE {table};
