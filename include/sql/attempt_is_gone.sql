-- True (and the lock taken) when no live session holds the attempt's lock: its attempt is gone.
SELECT pg_try_advisory_lock(hashtext('salesforce_pipeline.attempt.' || %(schema)s), (%(audit_id)s %% 2147483647)::integer);
