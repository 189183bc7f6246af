INSERT INTO {rejected} (id) VALUES %s;
