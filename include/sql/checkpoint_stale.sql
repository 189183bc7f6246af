-- Checkpoints nobody has moved on for ttl hours: their run was given up (or its Bulk results are
-- about to expire in Salesforce). Their staged rows are dropped with them.
SELECT c.checkpoint_id
FROM {schema}.load_checkpoint c
WHERE c.sobject = %(sobject)s
  AND greatest(c.updated_at, (SELECT max(s.updated_at) FROM {schema}.load_checkpoint_slice s
                              WHERE s.checkpoint_id = c.checkpoint_id))
      < now() - make_interval(hours => %(ttl_hours)s)
FOR UPDATE OF c SKIP LOCKED;
