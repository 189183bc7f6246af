-- The slice reaching up to now, read after all the others, into the successor they filled: a
-- record changed while the load ran is in both, and only its newest version stays. Its older
-- versions in the stage go first, then the successor's versions the stage replaces, then the
-- stage's rows go in, one per Id. The stage is small (records changed since the slices were
-- planned), so each join hashes it and reads the successor once.
DELETE FROM {stage} newer USING {successor} kept
WHERE kept.id = newer.id AND kept.system_modstamp > newer.system_modstamp;
DELETE FROM {successor} kept USING {stage} newer WHERE kept.id = newer.id;
INSERT INTO {successor} ({columns})
SELECT DISTINCT ON (id) {columns}
FROM {stage}
ORDER BY id, system_modstamp DESC;
