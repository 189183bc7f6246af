-- Distinct Ids this run loaded (rejected records are not among them).
SELECT count(*) FROM (SELECT DISTINCT id FROM {extracted}) ids;
