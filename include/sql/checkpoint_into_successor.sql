-- The slices of this first load (all but the one reaching up to now) stage into the successor.
UPDATE {schema}.load_checkpoint SET into_successor = true, updated_at = now()
WHERE checkpoint_id = %(checkpoint_id)s;
