-- Loads of one object are serialised (a backfill beside the daily run waits here), so two
-- runs never interleave their chunks or deadlock on each other's rows. Released at commit.
-- The wait is bounded by the lock_timeout set just before (object_lock_wait_seconds).
SELECT pg_advisory_xact_lock(hashtext(%(lock_name)s));
