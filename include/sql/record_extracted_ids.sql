-- Note the chunk's Ids (an Id seen in two chunks is noted twice; readers take the newest stamp).
INSERT INTO {extracted} (id, system_modstamp)
SELECT id, system_modstamp FROM {stage};
