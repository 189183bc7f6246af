-- First statement of every staging transaction: which attempt owns the checkpoint. Held FOR
-- SHARE until the transaction ends, so a later attempt's claim waits for it, never interleaves.
SELECT owner_audit_id FROM {schema}.load_checkpoint WHERE checkpoint_id = %(checkpoint_id)s FOR SHARE;
