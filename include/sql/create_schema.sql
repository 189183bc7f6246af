-- Run only when the schema is missing: CREATE SCHEMA needs CREATE on the database, even with
-- IF NOT EXISTS (loader_role.sql grants it; an administrator may also create the schema first).
CREATE SCHEMA {schema};
