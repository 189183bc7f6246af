SELECT count(*) FILTER (WHERE is_deleted), count(*) FROM {stage};
