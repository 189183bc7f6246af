-- Whether a table of the pipeline's own (a stage or a successor) is there.
SELECT to_regclass(%(table)s) IS NOT NULL;
