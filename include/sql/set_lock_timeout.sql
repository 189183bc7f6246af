-- This transaction's longest wait for a lock (milliseconds); the session's setting returns at commit.
SELECT set_config('lock_timeout', %(milliseconds)s, true);
