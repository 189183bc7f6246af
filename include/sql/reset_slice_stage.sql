-- A slice read again from its start: what it staged before goes.
TRUNCATE {stage};
DELETE FROM {rejects} WHERE slice_no = %(slice_no)s;
