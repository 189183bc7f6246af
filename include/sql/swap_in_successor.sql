-- The swap, under the object's lock and an ACCESS EXCLUSIVE lock on the empty target, in the
-- apply's transaction (a failure or rollback leaves the old table exactly as it was): the old
-- table goes (RESTRICT: nothing may depend on it, swap_blockers.sql), the successor takes its name.
DROP TABLE {target};
ALTER TABLE {successor} RENAME TO {new_name};
