SELECT count(*) FROM {stage};
