-- A first load's successor: a table shaped as the (empty) target, columns, defaults, NOT NULL
-- and CHECK constraints, comments, storage (LIKE ... EXCLUDING INDEXES: the indexes are built
-- once the rows are in, see successor_build_statements.sql). LOGGED, so that it can become the
-- target (table_swap); until then it is also the merged stage the apply reads.
CREATE TABLE {successor} (LIKE {target} INCLUDING ALL EXCLUDING INDEXES);
