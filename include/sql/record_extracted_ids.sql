-- Keep the newest system_modstamp seen for each Id in this run.
INSERT INTO {extracted} AS e (id, system_modstamp)
SELECT id, system_modstamp FROM {stage}
ON CONFLICT (id) DO UPDATE SET system_modstamp = GREATEST(e.system_modstamp, EXCLUDED.system_modstamp);
