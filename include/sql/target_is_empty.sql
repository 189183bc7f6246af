-- Whether the target holds no rows at all. Checked under the object's lock, inside the load's
-- transaction: an empty table (a first load) is filled by COPY straight into it, since there
-- is nothing there to guard or to mark deleted.
SELECT NOT EXISTS (SELECT 1 FROM {target});
