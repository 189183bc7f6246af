-- Every slice's rows, one per Id at its newest SystemModstamp (a record that changed while the
-- load ran can be in two slices), in Id order: the apply reads it in one pass and writes the
-- target's primary key in order. Built before the object's lock is taken.
CREATE UNLOGGED TABLE {merged} AS
SELECT DISTINCT ON (id) {columns}
FROM ({slices}) staged
ORDER BY id, system_modstamp DESC;
