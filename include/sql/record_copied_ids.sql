-- Leaving the direct-COPY path mid-load: every row in the target was written by this run (it
-- was empty under the object's lock), so its Ids are the ones extracted so far.
INSERT INTO {extracted} (id, system_modstamp)
SELECT id, system_modstamp FROM {target};
