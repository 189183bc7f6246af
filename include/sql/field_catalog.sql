-- The fields an object's table carries, as the last successful run saw them (schema_drift.py).
SELECT field, column_name, kind, salesforce_type, calculated, present
FROM {catalog}
WHERE sobject = %(sobject)s;
