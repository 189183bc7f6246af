-- The checkpoint of one object's load in one DAG run, locked: one attempt at a time claims it.
SELECT checkpoint_id, fingerprint, method, extracted_at, into_successor
FROM {schema}.load_checkpoint
WHERE sobject = %(sobject)s AND dag_run_id = %(dag_run_id)s
FOR UPDATE;
