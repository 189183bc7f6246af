-- One row per Id in a successor whose slices somehow staged an Id twice (which their disjoint
-- SystemModstamp bounds rule out): the newest version stays. Only run when building its primary
-- key found a duplicate.
DELETE FROM {successor} older USING {successor} newer
WHERE older.id = newer.id
  AND (older.system_modstamp, older.ctid) < (newer.system_modstamp, newer.ctid);
