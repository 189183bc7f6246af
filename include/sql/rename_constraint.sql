-- A swapped-in table's constraint back to its original name (its index, if any, follows).
ALTER TABLE {target} RENAME CONSTRAINT {now} TO {original};
