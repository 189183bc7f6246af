-- A first load that may swap the table: no session may write to it (or read it) from the check
-- that it is empty to the commit. Bounded by lock_timeout.
LOCK TABLE {target} IN ACCESS EXCLUSIVE MODE;
