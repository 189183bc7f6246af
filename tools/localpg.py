"""A private PostgreSQL server on demand, shared by `make test`, `make demo` and `.ci/run`.

Usage: python tools/localpg.py ensure|stop|restart|status|url

`ensure` prints one line, the admin URL of a server that answers:

* when ``AIRFLOW_CONN_POSTGRES_WAREHOUSE`` is set (a URI, or Airflow's connection JSON), that
  server is used as it is and nothing is started;
* otherwise a cluster of our own is created under ``.local/postgres`` (git-ignored) on first use,
  listening only on 127.0.0.1 at a free non-default port, and started if it is not running.

Postgres refuses to run as root, so when we are root the server runs as the unprivileged
``postgres`` user (Debian's packages create it) or, failing that, a ``sfpipeline`` user we add.
Only the standard library is used: this runs before the virtualenv exists.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("LOCALPG_DIR", ROOT / ".local" / "postgres"))
DATA_DIR = STATE_DIR / "data"
PORT_FILE = STATE_DIR / "port"
PASSWORD_FILE = STATE_DIR / "superuser-password"
LOG_FILE = STATE_DIR / "server.log"
SUPERUSER = "postgres"
ENV_CONNECTION = "AIRFLOW_CONN_POSTGRES_WAREHOUSE"

INSTALL_HINT = (
    "No PostgreSQL server binaries (initdb, pg_ctl) were found on PATH or in /usr/lib/postgresql/*/bin.\n"
    "Install them, e.g. `sudo apt-get install postgresql` (Debian/Ubuntu) or `brew install postgresql@15` "
    "(macOS),\nor point the pipeline at an existing server with "
    f"{ENV_CONNECTION}=postgresql://USER:PASSWORD@HOST:5432/DBNAME"
)


class LocalPgError(RuntimeError):
    """A failure the user can act on; the message says how."""


def say(message: str) -> None:
    """A progress line on stderr, tagged [localpg]."""
    # stdout carries the URL for callers; progress goes to stderr.
    print(f"[localpg] {message}", file=sys.stderr, flush=True)


def connection_from_env() -> str | None:
    """Return the warehouse connection given in the environment as a postgresql:// URL, if any."""
    raw = os.environ.get(ENV_CONNECTION, "").strip()
    if not raw:
        return None
    if raw.startswith("{"):
        conn = json.loads(raw)
        user = urllib.parse.quote(conn.get("login") or "", safe="")
        password = urllib.parse.quote(conn.get("password") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = conn.get("host") or "127.0.0.1"
        port = conn.get("port") or 5432
        database = conn.get("schema") or "postgres"
        return f"postgresql://{auth}{host}:{port}/{database}"
    scheme, _, rest = raw.partition("://")
    if scheme not in ("postgres", "postgresql"):
        raise LocalPgError(
            f"{ENV_CONNECTION} must be a postgresql:// URI or connection JSON, got scheme {scheme!r}"
        )
    return f"postgresql://{rest}"


def find_binaries() -> Path:
    """Directory holding initdb/pg_ctl: PATH first, then the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(x) for x in Path(p).parent.name.split(".") if x.isdigit()],
    )
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise LocalPgError(INSTALL_HINT)


def server_user() -> str | None:
    """The unprivileged user to run the server as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "sfpipeline"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "sfpipeline"], check=True)
    return "sfpipeline"


def run_as(user: str | None, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run of `argv`, as `user` (through runuser) when one is given."""
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(argv, **kwargs)


def free_port() -> int:
    """A port on 127.0.0.1 that the kernel reports free."""
    # A fixed default (5432) would clash with a system server; ask the kernel for a free one.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_answers(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def make_traversable(path: Path, user: str | None) -> None:
    """The server user must reach the data directory through every parent folder."""
    if user is None:
        return
    uid = pwd.getpwnam(user).pw_uid
    gid = pwd.getpwnam(user).pw_gid
    for parent in [p for p in path.parents if str(p) != "/"]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)
    os.chown(STATE_DIR, uid, gid)


def init_cluster(bindir: Path, user: str | None) -> None:
    """A new cluster in DATA_DIR: a random superuser password, scram-sha-256 logins, and a free port
    recorded for start()."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    make_traversable(STATE_DIR, user)
    password = secrets.token_urlsafe(18)
    PASSWORD_FILE.write_text(password)
    PASSWORD_FILE.chmod(0o644 if user else 0o600)
    say(f"initdb: creating a private cluster in {DATA_DIR}")
    pwfile = STATE_DIR / "pwfile"
    pwfile.write_text(password + "\n")
    if user:
        shutil.chown(pwfile, user)
    try:
        run_as(
            user,
            [
                str(bindir / "initdb"),
                "-D",
                str(DATA_DIR),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    PORT_FILE.write_text(str(free_port()))


def start(bindir: Path, user: str | None) -> int:
    """Our cluster running on its recorded port, started if need be (on a new port if something else took
    it); returns the port."""
    port = int(PORT_FILE.read_text())
    if (DATA_DIR / "postmaster.pid").exists() and port_answers(port):
        return port
    if port_answers(port):
        # Someone else took our port since the cluster was created: move to a new one.
        port = free_port()
        PORT_FILE.write_text(str(port))
    say(f"starting PostgreSQL on 127.0.0.1:{port} (data in {DATA_DIR}, log in {LOG_FILE})")
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='{STATE_DIR}' "
        "-c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    result = run_as(
        user,
        [str(bindir / "pg_ctl"), "-D", str(DATA_DIR), "-l", str(LOG_FILE), "-o", options, "-w", "start"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if result.returncode != 0:
        tail = LOG_FILE.read_text()[-2000:] if LOG_FILE.exists() else ""
        raise LocalPgError(f"pg_ctl start failed: {result.stderr.strip()}\n{tail}")
    return port


def pg_isready(bindir: Path, port: int) -> bool:
    """Whether the server accepts connections within about 5 s (pg_isready, polled)."""
    for _ in range(50):
        if (
            subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ).returncode
            == 0
        ):
            return True
        time.sleep(0.1)
    return False


def local_url(port: int) -> str:
    """The superuser's URL for our own cluster on `port`."""
    password = urllib.parse.quote(PASSWORD_FILE.read_text().strip(), safe="")
    return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/postgres"


def ensure() -> str:
    """The admin URL of a server that answers: the one the environment names, else our own cluster, created
    and started as needed."""
    given = connection_from_env()
    if given:
        say(f"using the server given in {ENV_CONNECTION}")
        return given
    bindir = find_binaries()
    user = server_user()
    if not (DATA_DIR / "PG_VERSION").exists():
        if DATA_DIR.exists():
            shutil.rmtree(DATA_DIR)
        init_cluster(bindir, user)
    port = start(bindir, user)
    if not pg_isready(bindir, port):
        raise LocalPgError(f"PostgreSQL did not answer on 127.0.0.1:{port}; see {LOG_FILE}")
    return local_url(port)


def stop() -> None:
    """Stop our own cluster (fast shutdown) if it is running; a given server is left alone."""
    if not (DATA_DIR / "postmaster.pid").exists():
        say("no local PostgreSQL running")
        return
    bindir = find_binaries()
    say(f"stopping the local PostgreSQL in {DATA_DIR}")
    run_as(
        server_user(), [str(bindir / "pg_ctl"), "-D", str(DATA_DIR), "-m", "fast", "-w", "stop"], check=False
    )


def restart() -> None:
    """Restart the private cluster (the fault tests use it); a given server is not ours to restart."""
    if connection_from_env():
        raise LocalPgError(f"{ENV_CONNECTION} names a server of yours; localpg restarts only its own cluster")
    stop()
    bindir = find_binaries()
    start(bindir, server_user())


def status() -> None:
    """Say on stderr which server the pipeline uses and whether ours is running."""
    if connection_from_env():
        say(f"{ENV_CONNECTION} is set: the pipeline uses that server")
    elif (DATA_DIR / "postmaster.pid").exists() and PORT_FILE.exists():
        say(f"local PostgreSQL running on 127.0.0.1:{PORT_FILE.read_text().strip()}")
    else:
        say("local PostgreSQL not running")


def main(argv: list[str]) -> int:
    """Run the command argv[1] names (ensure by default): 0 done, 1 on a LocalPgError, 2 if unknown."""
    command = argv[1] if len(argv) > 1 else "ensure"
    try:
        if command in ("ensure", "url"):
            print(ensure(), flush=True)
        elif command == "stop":
            stop()
        elif command == "restart":
            restart()
        elif command == "status":
            status()
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except LocalPgError as exc:
        print(f"[localpg] ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
