-- Rows in COPY text format (copy_format.py) into the named columns of a table.
COPY {table} ({columns}) FROM STDIN
