SELECT count(*) FROM {target} WHERE NOT is_deleted;
