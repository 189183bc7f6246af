-- End the sessions an earlier try's slices staged through: their application_name names that
-- try's audit row (audit.slice_session_name), which no other session carries.
SELECT pid, pg_terminate_backend(pid)
FROM pg_stat_activity
WHERE application_name = %(name)s AND usename = current_user;
