SELECT count(*) FROM {target};
