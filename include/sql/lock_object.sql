-- Loads of one object are serialised (a backfill beside the daily run waits here), so two
-- runs never interleave their chunks or deadlock on each other's rows. Released at commit.
SELECT pg_advisory_xact_lock(hashtext(%(lock_name)s));
