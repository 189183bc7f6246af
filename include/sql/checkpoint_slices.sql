SELECT slice_no, lower_bound, upper_bound, expected, staged, done, bulk_job_id, resume_at, attempts, last_id
FROM {schema}.load_checkpoint_slice
WHERE checkpoint_id = %(checkpoint_id)s
ORDER BY slice_no;
