"""Command line: ``python -m salesforce_emulator --port 8443 --accounts N --contacts M --seed S``.

``--org KEY`` (repeatable) hosts another org beside the first, with its own Organization Id,
records, allowance and credentials (``GET /__admin/orgs`` lists them). ``--calculated-fields``
adds the built-in formula and roll-up fields to every org. The latency model
(``--page-latency-ms``, ``--poll-latency-ms``, ``--job-base-seconds``, ``--job-records-per-second``)
and the limits (``--max-concurrent-requests``, ``--long-running-seconds``,
``--max-concurrent-bulk-jobs``, ``--max-cursors-per-user``) apply to every org; ``PUT
/__admin/latency`` and ``PUT /__admin/limits`` change them while it serves.

Prints exactly one line, ``READY <base-url> ca=<ca-file>``, once it serves, then serves until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from salesforce_emulator.limits import MODEL_OPTIONS
from salesforce_emulator.server import Emulator

log = logging.getLogger("salesforce_emulator")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and --help)."""
    p = argparse.ArgumentParser(prog="python -m salesforce_emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8443, help="TCP port (0: any free port)")
    p.add_argument(
        "--hostname",
        action="append",
        default=[],
        help="extra certificate name (repeatable); the first one is used in the printed URL",
    )
    p.add_argument("--accounts", type=int, default=50)
    p.add_argument("--contacts", type=int, default=150)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--now", help="anchor of generated timestamps (ISO datetime, default: current time)")
    p.add_argument("--period-days", type=float, default=30.0, help="timestamps spread over this many days")
    p.add_argument("--daily-limit", type=int, default=15_000, help="DailyApiRequests max")
    p.add_argument(
        "--hide-field",
        action="append",
        default=[],
        metavar="OBJECT.FIELD",
        help="hide a field from the API user (repeatable), e.g. Account.Health_Score__c",
    )
    p.add_argument(
        "--org",
        action="append",
        default=[],
        metavar="KEY",
        help="host another org with this key (repeatable); same sizes, its own data and credentials",
    )
    p.add_argument(
        "--calculated-fields",
        action="store_true",
        help="add the built-in formula and roll-up fields (Account.Number_of_Contacts__c, ...)",
    )
    model = p.add_argument_group("latency model and limits (every org; default: off)")
    model.add_argument(
        "--page-latency-ms", type=float, help="before each REST query page and Bulk results page"
    )
    model.add_argument("--poll-latency-ms", type=float, help="before each Bulk 2.0 job status answer")
    model.add_argument("--job-base-seconds", type=float, help="Bulk job processing time: this much ...")
    model.add_argument("--job-records-per-second", type=float, help="... plus records / this")
    model.add_argument("--max-concurrent-requests", type=int, help="per org (Salesforce: 25); past it 403")
    model.add_argument("--long-running-seconds", type=float, help="a request counts after this long (20)")
    model.add_argument("--max-concurrent-bulk-jobs", type=int, help="running Bulk query jobs per org")
    model.add_argument("--max-cursors-per-user", type=int, help="open query cursors per user (10)")
    p.add_argument("--state-dir", help="keep the CA here across restarts (ca file: emulator-ca.pem)")
    p.add_argument("--log-level", default="WARNING")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGTERM/SIGINT."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    hidden: dict[str, list[str]] = {}
    for item in args.hide_field:
        sobject, _, field = item.partition(".")
        if not field:
            raise SystemExit(f"--hide-field needs OBJECT.FIELD, got {item!r}")
        hidden.setdefault(sobject, []).append(field)
    options: dict[str, Any] = {"period_days": args.period_days, "daily_limit": args.daily_limit}
    if args.now:
        options["now"] = args.now
    if hidden:
        options["hidden_fields"] = hidden
    if args.calculated_fields:
        options["calculated_fields"] = True
    model = {name: getattr(args, name) for name in MODEL_OPTIONS if getattr(args, name) is not None}
    emulator = Emulator(
        accounts=args.accounts,
        contacts=args.contacts,
        seed=args.seed,
        host=args.host,
        port=args.port,
        hostnames=args.hostname,
        state_dir=args.state_dir,
        **options,
        **model,  # the emulator's defaults: every org, --org ones too
    )
    for key in args.org:
        emulator.add_org(key, accounts=args.accounts, contacts=args.contacts, **options)
    emulator.start()
    for org in emulator.orgs.values():
        org.build_indexes()
    # This process exists to serve: move the generated data out of the garbage collector's
    # reach and make collections rarer, or full collections over millions of row tuples stall
    # every large query.
    gc.freeze()
    gc.set_threshold(50_000, 50, 50)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"READY {emulator.base_url} ca={emulator.ca_path}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
