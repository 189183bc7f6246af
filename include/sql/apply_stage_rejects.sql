-- The load's rejected records into load_rejects, and the Ids among them that name a row into the
-- transaction's rejected-Ids table (a full refresh must not mark those rows deleted).
INSERT INTO {schema}.load_rejects (dag_run_id, sobject, record_id, reason, raw_record)
SELECT %(dag_run_id)s, %(sobject)s, record_id, reason, raw_record FROM {rejects} ORDER BY slice_no;
INSERT INTO {rejected} (id) SELECT record_id FROM {rejects} WHERE names_row;
