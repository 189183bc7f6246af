-- The target was empty under the object's lock (a first load): every merged row goes in as it
-- is. The merged stage holds each Id once, so there is nothing to guard.
INSERT INTO {target} ({columns})
SELECT {columns} FROM {stage};
