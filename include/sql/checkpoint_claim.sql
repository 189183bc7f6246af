-- This attempt stages now. It waits for a staging transaction of an earlier attempt still in
-- flight (which holds the row FOR SHARE, see checkpoint_fence.sql); that attempt's next one
-- finds itself no longer the owner and stops.
UPDATE {schema}.load_checkpoint SET owner_audit_id = %(owner)s, updated_at = now()
WHERE checkpoint_id = %(checkpoint_id)s;
