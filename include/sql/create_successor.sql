-- A first load's successor: a table shaped as the (empty) target, columns, defaults, NOT NULL
-- and CHECK constraints, comments, storage (LIKE ... EXCLUDING INDEXES: the indexes are built
-- once the rows are in, see successor_build_statements.sql). LOGGED, so that it can become the
-- target (table_swap); until then it is also the merged stage the apply reads. Autovacuum is off
-- while the slices fill it: it would vacuum a table that only grows, beside the load, and an
-- index build that finds it there waits a deadlock_timeout for it to be cancelled. The build
-- turns it back on (successor_build_statements.sql).
CREATE TABLE {successor} (LIKE {target} INCLUDING ALL EXCLUDING INDEXES)
    WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false);
