-- A configured extra field (custom __c included) gets a column of the type describe gives it.
ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {column} {column_type};
