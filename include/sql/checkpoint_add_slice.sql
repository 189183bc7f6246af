INSERT INTO {schema}.load_checkpoint_slice (checkpoint_id, slice_no, lower_bound, upper_bound, expected)
VALUES (%(checkpoint_id)s, %(slice_no)s, %(lower_bound)s, %(upper_bound)s, %(expected)s);
