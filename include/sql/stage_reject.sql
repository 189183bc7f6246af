INSERT INTO {rejects} (slice_no, record_id, reason, raw_record, names_row) VALUES %s;
