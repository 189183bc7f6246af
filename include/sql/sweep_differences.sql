-- The records whose row differs from what Salesforce lists, and why: missing from the table
-- (committed late, or never loaded), older than Salesforce's version (a change missed), or
-- deleted on one side only (a delete missed, or a row marked deleted by mistake).
INSERT INTO {reread} (id, reason)
SELECT s.id,
       CASE WHEN t.id IS NULL THEN 'missing'
            WHEN t.is_deleted <> s.is_deleted AND s.is_deleted THEN 'missed_delete'
            WHEN t.is_deleted <> s.is_deleted THEN 'wrongly_deleted'
            ELSE 'stale' END
FROM (SELECT DISTINCT ON (id) id, system_modstamp, is_deleted FROM {listed}
      ORDER BY id, system_modstamp DESC) s
LEFT JOIN {target} t ON t.id = s.id
WHERE t.id IS NULL OR t.system_modstamp < s.system_modstamp OR t.is_deleted <> s.is_deleted;
SELECT reason, count(*) FROM {reread} GROUP BY reason;
