"""`python -m tools.local_airflow start|stop|status`: see cli.py."""

from __future__ import annotations

import sys

from tools.local_airflow.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
