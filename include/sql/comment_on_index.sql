-- An index built again keeps the comment its earlier self had.
COMMENT ON INDEX {index} IS %(comment)s;
