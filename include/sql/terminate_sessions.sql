-- End the sessions an earlier try used, only if they are still the pipeline's sessions that
-- started before that try did (a pid can be reused by a later session). A role may end its own
-- role's sessions without any special privilege.
SELECT pid, pg_terminate_backend(pid)
FROM pg_stat_activity
WHERE pid = ANY(%(pids)s) AND application_name LIKE 'salesforce\_to\_postgres%%'
  AND backend_start <= %(started_at)s AND usename = current_user;
