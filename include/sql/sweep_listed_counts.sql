-- Distinct Ids the sweep listed, and how many of them are live.
SELECT count(DISTINCT id), count(DISTINCT id) FILTER (WHERE NOT is_deleted) FROM {listed};
