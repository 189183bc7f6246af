-- Held by a running attempt for as long as its database session lives (session-level, so it
-- outlasts the load's commit or rollback). A killed worker's session ends and the lock with it,
-- which is how the next run tells an abandoned `running` row from a live one.
SELECT pg_advisory_lock(hashtext('salesforce_pipeline.attempt.' || %(schema)s), (%(audit_id)s %% 2147483647)::integer);
