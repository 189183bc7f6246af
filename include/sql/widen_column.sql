-- A column whose Salesforce field changed type, widened so it holds the old values and the new
-- ones alike (never narrowed): bigint -> numeric, anything else -> text, every value kept.
ALTER TABLE {target} ALTER COLUMN {column} TYPE {wider} USING {column}::{wider};
