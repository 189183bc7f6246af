"""A private Redis server on demand: the Celery broker of `make airflow EXECUTOR=celery` and of the
Celery tests.

Usage: python tools/localredis.py ensure|stop|restart|status|url

`ensure` prints one line, the broker URL (`redis://:<password>@127.0.0.1:<port>/0`) of a Redis that
answers: our own, under ``.local/redis`` (git-ignored), listening only on 127.0.0.1 at a free
port, password-protected, with no persistence beyond an append-only file of its own. When
`redis-server` is missing it is installed with the system's package manager (Debian's
`redis-server`), as tools/install_browser.sh installs chromium. `make down` stops it.
Only the standard library is used.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("LOCALREDIS_DIR", ROOT / ".local" / "redis"))
PORT_FILE = STATE_DIR / "port"
PASSWORD_FILE = STATE_DIR / "password"
PID_FILE = STATE_DIR / "redis.pid"
LOG_FILE = STATE_DIR / "server.log"


def say(message: str) -> None:
    """A progress line on stderr, tagged [localredis]: stdout carries only what callers read."""
    print(f"[localredis] {message}", file=sys.stderr, flush=True)


def redis_server() -> str:
    """The redis-server executable, installed with apt-get (through sudo unless we are root) when missing."""
    found = shutil.which("redis-server")
    if found:
        return found
    say("redis-server is missing: installing Debian's redis-server with apt-get")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=False, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "redis-server"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    found = shutil.which("redis-server")
    if not found:
        raise SystemExit("[localredis] redis-server is still missing after apt-get install redis-server")
    return found


def free_port() -> int:
    """A port on 127.0.0.1 that the kernel reports free."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As Redis binds: connections of the stopped server left in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def answers(port: int, password: str) -> bool:
    """A PING with the password gets +PONG (plain RESP over a socket: no client library needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            reply = b""
            deadline = time.monotonic() + 1
            while b"PONG" not in reply and time.monotonic() < deadline:
                chunk = sock.recv(64)
                if not chunk:
                    break
                reply += chunk
            return b"+PONG" in reply
    except OSError:
        return False


def url(port: int, password: str) -> str:
    """The broker URL of our Redis on `port`, password included."""
    return f"redis://:{password}@127.0.0.1:{port}/0"


def _state() -> tuple[int | None, str]:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    if not PASSWORD_FILE.exists():
        PASSWORD_FILE.touch(mode=0o600)
        PASSWORD_FILE.write_text(secrets.token_urlsafe(24))
    port = int(PORT_FILE.read_text()) if PORT_FILE.exists() else None
    return port, PASSWORD_FILE.read_text().strip()


def start(port: int, password: str) -> None:
    """Start redis-server on `port` from a config file holding the password, and wait up to 15 s for it to
    answer; only then is the port recorded."""
    config = STATE_DIR / "redis.conf"
    config.touch(mode=0o600)
    # The password lives in a file only our user reads, never on a command line (ps would show it).
    config.write_text(
        "\n".join(
            [
                "bind 127.0.0.1",
                f"port {port}",
                f"requirepass {password}",
                "daemonize yes",
                f"pidfile {PID_FILE}",
                f"logfile {LOG_FILE}",
                f"dir {STATE_DIR}",
                "appendonly yes",
                'save ""',
                "protected-mode yes",
            ]
        )
        + "\n"
    )
    subprocess.run([redis_server(), str(config)], check=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if answers(port, password):
            PORT_FILE.write_text(str(port))
            return
        time.sleep(0.1)
    raise SystemExit(f"[localredis] Redis on port {port} did not answer within 15 s; see {LOG_FILE}")


def ensure() -> str:
    """The broker URL of our Redis, started if it does not answer, on its earlier port if still free."""
    port, password = _state()
    if port is not None and answers(port, password):
        return url(port, password)
    # The same port again after a restart, so a broker URL handed out before stays right.
    port = port if port is not None and _port_free(port) else free_port()
    say(f"starting Redis on 127.0.0.1:{port} (data and log in {STATE_DIR})")
    start(port, password)
    return url(port, password)


def stop() -> None:
    """SIGTERM our Redis and wait up to 10 s for it to exit; without a pid file there is nothing to stop."""
    if not PID_FILE.exists():
        return
    try:
        pid = int(PID_FILE.read_text().strip())
        os.kill(pid, 15)
    except (ValueError, ProcessLookupError):
        PID_FILE.unlink(missing_ok=True)
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    PID_FILE.unlink(missing_ok=True)
    say("stopped the local Redis")


def main(argv: list[str]) -> int:
    """Run the command argv[1] names (ensure by default): 0 done, 2 if unknown."""
    command = argv[1] if len(argv) > 1 else "ensure"
    if command in ("ensure", "url"):
        print(ensure(), flush=True)
    elif command == "stop":
        stop()
    elif command == "restart":
        stop()
        print(ensure(), flush=True)
    elif command == "status":
        port, password = _state()
        print("running" if port and answers(port, password) else "stopped")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
