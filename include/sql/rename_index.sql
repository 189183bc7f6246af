-- A swapped-in table's index back to its original name.
ALTER INDEX {now} RENAME TO {original};
