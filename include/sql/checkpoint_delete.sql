-- Its slices go with it (ON DELETE CASCADE).
DELETE FROM {schema}.load_checkpoint WHERE checkpoint_id = %(checkpoint_id)s;
