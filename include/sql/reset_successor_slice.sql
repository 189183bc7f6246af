-- A slice that stages into the successor read again from its start: what it staged before goes.
-- Its rows are exactly those with a SystemModstamp in its bounds (whole seconds, compared as
-- SOQL compares them), which no other slice staging into the successor shares.
DELETE FROM {successor}
WHERE (%(lower)s::timestamptz IS NULL OR system_modstamp >= %(lower)s::timestamptz)
  AND (%(upper)s::timestamptz IS NULL OR system_modstamp < %(upper)s::timestamptz);
DELETE FROM {rejects} WHERE slice_no = %(slice_no)s;
