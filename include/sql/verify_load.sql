-- Extracted Ids that are not in the target at their newest extracted system_modstamp or a
-- newer one. Any row here would be data loss, and fails the task.
SELECT e.id
FROM (SELECT id, max(system_modstamp) AS system_modstamp FROM {extracted} GROUP BY id) e
LEFT JOIN {target} t ON t.id = e.id
WHERE t.id IS NULL OR t.system_modstamp < e.system_modstamp
LIMIT 20;
