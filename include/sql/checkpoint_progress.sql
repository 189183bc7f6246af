-- A slice's progress, committed in the same transaction as the rows it counts.
UPDATE {schema}.load_checkpoint_slice
SET staged = %(staged)s, done = %(done)s, bulk_job_id = %(bulk_job_id)s, resume_at = %(resume_at)s,
    attempts = %(attempts)s, last_id = %(last_id)s, updated_at = now()
WHERE checkpoint_id = %(checkpoint_id)s AND slice_no = %(slice_no)s;
