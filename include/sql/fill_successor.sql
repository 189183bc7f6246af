-- A successor filled from the slices' stages in one pass: one row per Id at its newest
-- SystemModstamp (a record that changed while the load ran can be in two slices), in Id order.
INSERT INTO {successor} ({columns})
SELECT DISTINCT ON (id) {columns}
FROM ({slices}) staged
ORDER BY id, system_modstamp DESC;
