-- One change of a table's fields (schema_drift.py): added, restored, removed or retyped.
INSERT INTO {changes} (org, sobject, field, column_name, change, detail, dag_run_id)
VALUES (%(org)s, %(sobject)s, %(field)s, %(column_name)s, %(change)s, %(detail)s, %(dag_run_id)s);
