INSERT INTO {schema}.load_rejects (dag_run_id, sobject, record_id, reason, raw_record) VALUES %s;
