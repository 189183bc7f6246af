-- The records a load's slices could not convert, kept until the apply moves them to load_rejects.
CREATE UNLOGGED TABLE IF NOT EXISTS {rejects} (
    slice_no    integer NOT NULL,
    record_id   text,
    reason      text NOT NULL,
    raw_record  text NOT NULL,
    names_row   boolean NOT NULL   -- a well-formed Id of this object: its row must not be marked deleted
);
