-- Move one staged chunk into the target. The WHERE guard keeps the newest version of a
-- record: a backfill of an old window (older system_modstamp) never overwrites newer data.
INSERT INTO {target} AS t ({columns})
SELECT {columns} FROM {stage}
ON CONFLICT (id) DO UPDATE SET {assignments}
WHERE t.system_modstamp <= EXCLUDED.system_modstamp;
