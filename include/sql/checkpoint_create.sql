INSERT INTO {schema}.load_checkpoint (sobject, dag_run_id, fingerprint, method, extracted_at, owner_audit_id)
VALUES (%(sobject)s, %(dag_run_id)s, %(fingerprint)s, %(method)s, %(extracted_at)s, %(owner)s)
RETURNING checkpoint_id;
