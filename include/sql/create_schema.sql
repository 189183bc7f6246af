-- Run only when the schema is missing: CREATE SCHEMA needs CREATE on the database, even with
-- IF NOT EXISTS, which a least-privilege loader (loader_role.sql) does not have.
CREATE SCHEMA salesforce;
