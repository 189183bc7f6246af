SELECT 1 FROM pg_namespace WHERE nspname = %(schema)s;
