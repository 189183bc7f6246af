SELECT pg_advisory_unlock(hashtext('salesforce_pipeline.attempt.' || %(schema)s), (%(audit_id)s %% 2147483647)::integer);
