"""The HTTPS server: routing, authentication, API usage, fault application, and :class:`Emulator`.

Threading HTTP server over TLS with HTTP/1.1 keep-alive; every response carries a
Content-Length and is written with one ``sendall`` so a page costs one TLS write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import json
import logging
import re
import socket
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Iterable
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from salesforce_emulator import admin, auth, bulk2, limits, rest
from salesforce_emulator.auth import ConnectedApp, Credentials, UserLogin, org_connected_app, org_user
from salesforce_emulator.bulk2 import BulkJobStore
from salesforce_emulator.faults import Fault
from salesforce_emulator.latency import LATENCY_OPTIONS, LatencyModel
from salesforce_emulator.rest import Response, error
from salesforce_emulator.store import Org
from salesforce_emulator.tls import CertificateAuthority
from salesforce_emulator.wire import gzip_bytes

__all__ = ["ENDPOINT_KINDS", "Emulator"]

log = logging.getLogger(__name__)

ENDPOINT_KINDS = (
    "login_soap",
    "login_oauth",
    "versions",
    "resources",
    "query",
    "query_all",
    "query_more",
    "describe_global",
    "describe",
    "sobject",
    "record",
    "limits",
    "bulk2_create",
    "bulk2_list",
    "bulk2_poll",
    "bulk2_abort",
    "bulk2_delete",
    "bulk2_results",
    "not_found",
    "admin",
)

_DATA_RE = re.compile(r"^/services/data/v(\d+)\.(\d)(/.*)?$")
_SOAP_RE = re.compile(r"^/services/Soap/u/([^/]+)(?:/.*)?$")
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")
DEFAULT_ORG = "default"  # the key of the org an Emulator is created with


class _Route:
    __slots__ = ("kind", "params")

    def __init__(self, kind: str, **params: Any):
        self.kind = kind
        self.params = params


def route(method: str, path: str) -> _Route:
    """Classify a request into an endpoint kind (used for counters and fault targeting)."""
    if path.startswith("/__admin"):
        return _Route("admin")
    if path == "/services/oauth2/token":
        return _Route("login_oauth") if method == "POST" else _Route("not_found", status=405)
    m = _SOAP_RE.match(path)
    if m:
        return (
            _Route("login_soap", version=m.group(1)) if method == "POST" else _Route("not_found", status=405)
        )
    if path in ("/services/data", "/services/data/"):
        return _Route("versions")
    m = _DATA_RE.match(path)
    if not m:
        return _Route("not_found")
    version = f"{m.group(1)}.{m.group(2)}"
    rest_path = (m.group(3) or "/").rstrip("/")
    parts = rest_path.split("/")[1:] if rest_path else []
    p: dict[str, Any] = {"version": version, "major": int(m.group(1))}
    if not parts:
        return _Route("resources", **p)
    head = parts[0]
    if head in ("query", "queryAll") and method == "GET":
        if len(parts) == 1:
            return _Route("query" if head == "query" else "query_all", **p)
        if len(parts) == 2:
            return _Route("query_more", locator=parts[1], **p)
    if head == "limits" and len(parts) == 1 and method == "GET":
        return _Route("limits", **p)
    if head == "sobjects" and method == "GET":
        if len(parts) == 1:
            return _Route("describe_global", **p)
        if len(parts) == 2:
            return _Route("sobject", name=parts[1], **p)
        if len(parts) == 3 and parts[2] == "describe":
            return _Route("describe", name=parts[1], **p)
        if len(parts) == 3:
            return _Route("record", name=parts[1], id=parts[2], **p)
    if head == "jobs" and len(parts) >= 2 and parts[1] == "query":
        if len(parts) == 2:
            if method == "POST":
                return _Route("bulk2_create", **p)
            if method == "GET":
                return _Route("bulk2_list", **p)
        if len(parts) == 3:
            kinds = {"GET": "bulk2_poll", "PATCH": "bulk2_abort", "DELETE": "bulk2_delete"}
            if method in kinds:
                return _Route(kinds[method], job=parts[2], **p)
        if len(parts) == 4 and parts[3] == "results" and method == "GET":
            return _Route("bulk2_results", job=parts[2], **p)
    return _Route("not_found", **p)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator, context: ssl.SSLContext, family: int):
        self.address_family = family
        self.emulator = emulator
        self.context = context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        # The handshake happens in the connection's own thread (see _Handler.setup), so one slow
        # or broken client cannot stall the accept loop.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Called from inside the except block of socketserver's request loop.
        log.debug("connection from %s ended with an error", client_address, exc_info=sys.exc_info())

    def close_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.connections)
            self.connections.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SalesforceEmulator"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(10)
        try:
            self.connection.do_handshake()  # type: ignore[attr-defined]
        except (ssl.SSLError, OSError):
            self.close_connection = True
            raise
        self.connection.settimeout(self.timeout)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # ------------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _base_url(self) -> str:
        # Point login results back at the host the client used (a docker service name, say).
        host = self.headers.get("Host")
        return f"https://{host}" if host else self.server.emulator.base_url

    def _handle(self, method: str) -> None:
        emulator = self.server.emulator
        started = time.perf_counter()
        split = urlsplit(self.path)
        path = split.path
        body = self._body()
        r = route(method, path)
        if r.kind == "admin":
            status, payload = admin.handle(emulator, method, path, split.query, body)
            self._send(Response(status, json.dumps(payload, ensure_ascii=False, default=str).encode()))
            return
        # Which org a request is for, as Salesforce knows it: the login's credentials, then the
        # session id; its data, limits, faults and counters are that org's alone.
        org = emulator.org_for_request(r.kind, self.headers.get("Authorization"), body)
        self._org = org
        org.record_call(r.kind)
        # Concurrency is counted from the moment a request arrives (delays included), like
        # Salesforce's limit on long-running concurrent requests; a refused one is not counted.
        api_call = r.kind not in ("login_soap", "login_oauth", "versions")
        token = org.inflight.enter(org) if api_call else None
        within_limit = token is not None or not api_call
        try:
            fired = org.faults.take(r.kind, self.path)
            response, after = self._apply_faults(org, fired, r.kind)
            if response is None and after == "reset":
                self._log(method, r.kind, 0, started)
                self._abort_connection()
                return
            if response is None:
                response = self._dispatch(org, r, method, split.query, body, fired, within_limit)
            self._log(method, r.kind, response.status, started)
            if after == "drop":
                fraction = next(f.fraction for f in fired if f.kind == "drop_connection")
                self._send(response, drop_fraction=fraction)
                return
            if response.status == 200:
                for fault in fired:
                    if fault.kind == "malformed_json" and response.content_type.startswith(
                        "application/json"
                    ):
                        response.body = response.body[: max(1, int(len(response.body) * fault.fraction))]
                    elif fault.kind == "truncated_csv" and response.content_type == "text/csv":
                        response.body = _truncate_csv(response.body, fault.fraction)
            self._send(response)
        finally:
            if token is not None:
                org.inflight.leave(token)

    def _log(self, method: str, kind: str, status: int, started: float) -> None:
        self._org.requests.append(
            {
                "method": method,
                "path": self.path,
                "kind": kind,
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            }
        )

    def _apply_faults(self, org: Org, fired: list[Fault], kind: str) -> tuple[Response | None, str | None]:
        """Handle the faults that act before the request is processed."""
        if not fired:
            return None, None
        fail = partial(_failure, kind)
        delay = sum(f.seconds for f in fired if f.kind == "delay")
        if delay:
            time.sleep(delay)
        after = None
        for fault in fired:
            what = fault.kind
            if what == "reset_connection":
                return None, "reset"
            if what == "drop_connection":
                after = "drop"
            if what == "expire_sessions":
                org.expire_sessions()
            if what == "server_unavailable":
                return fail(
                    503,
                    "SERVER_UNAVAILABLE",
                    fault.message or "Server temporarily unavailable",
                    retry_after=fault.retry_after,
                ), after
            if what == "request_limit":
                return fail(
                    403, "REQUEST_LIMIT_EXCEEDED", fault.message or "TotalRequests Limit exceeded."
                ), after
            if what == "concurrent_limit":
                msg = fault.message or "ConcurrentPerOrgLongTxn Limit exceeded."
                return fail(403, "REQUEST_LIMIT_EXCEEDED", msg, retry_after=fault.retry_after), after
            if what == "http_error":
                return fail(
                    fault.status,
                    fault.error_code,
                    fault.message or "An unexpected error occurred",
                    retry_after=fault.retry_after,
                ), after
        return None, after

    def _dispatch(
        self,
        org: Org,
        r: _Route,
        method: str,
        query: str,
        body: bytes,
        fired: list[Fault],
        within_limit: bool,
    ) -> Response:
        kind = r.kind
        if kind == "login_soap":
            status, xml = auth.soap_login(org, r.params["version"], body, self._base_url())
            return Response(status, xml, "text/xml;charset=UTF-8")
        if kind == "login_oauth":
            status, data = auth.oauth_token(org, body, self.headers.get("Authorization"), self._base_url())
            return Response(status, data)
        if kind == "versions":
            return rest.versions()
        if kind == "not_found" and "version" not in r.params:
            if r.params.get("status") == 405:
                return error(
                    405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are POST"
                )
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        major = r.params["major"]
        version = r.params["version"]
        if major < rest.MIN_VERSION:
            return error(410, "GONE", f"API version {version} is retired and no longer available")
        if major > rest.MAX_VERSION:
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        session = org.session(_token(self.headers.get("Authorization")))
        if session is None:
            return error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if not org.consume_api_call():
            return self._limited(error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
        if not within_limit:
            return self._limited(error(403, "REQUEST_LIMIT_EXCEEDED", limits.CONCURRENT_MESSAGE))
        org.latency.wait(r.kind)  # the latency model: sleeps in this request's thread only
        return self._limited(self._api(org, r, method, query, body, session.user_id, fired))

    def _limited(self, response: Response) -> Response:
        used, maximum = self._org.api_usage
        headers = dict(response.headers or {})
        headers["Sforce-Limit-Info"] = f"api-usage={used}/{maximum}"
        response.headers = headers
        return response

    def _api(
        self, org: Org, r: _Route, method: str, query: str, body: bytes, user_id: str, fired: list[Fault]
    ) -> Response:
        kind = r.kind
        version = r.params["version"]
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        options = self.headers.get("Sforce-Query-Options")
        if kind in ("query", "query_all"):
            return rest.query(org, user_id, version, params.get("q"), kind == "query_all", options)
        if kind == "query_more":
            return rest.query_more(org, version, r.params["locator"], options)
        if kind == "resources":
            return rest.resources(version)
        if kind == "limits":
            return rest.limits(org)
        if kind == "describe_global":
            return rest.describe_global_response(version)
        if kind == "describe":
            return rest.describe(org, version, r.params["name"])
        if kind == "sobject":
            return rest.sobject_info(version, r.params["name"])
        if kind == "record":
            return rest.record(org, version, r.params["name"], r.params["id"], params.get("fields"))
        if kind == "bulk2_create":
            fail = next(
                (
                    f.message or "InvalidBatch : Failed to process query"
                    for f in fired
                    if f.kind == "bulk_job_failed"
                ),
                None,
            )
            return bulk2.create(org, user_id, version, body, fail)
        if kind == "bulk2_list":
            return bulk2.listing(org)
        if kind == "bulk2_poll":
            return bulk2.poll(org, r.params["job"])
        if kind == "bulk2_abort":
            return bulk2.abort(org, r.params["job"], body)
        if kind == "bulk2_delete":
            return bulk2.delete(org, r.params["job"])
        if kind == "bulk2_results":
            return bulk2.results(org, version, r.params["job"], params)
        return error(404, "NOT_FOUND", "The requested resource does not exist")

    def _head(self, response: Response, length: int) -> bytes:
        reason = (
            HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else ""
        )
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Date: {email.utils.formatdate(usegmt=True)}",
            f"Content-Length: {length}",
        ]
        if response.status != 204:
            lines.append(f"Content-Type: {response.content_type}")
        for key, value in (response.headers or {}).items():
            lines.append(f"{key}: {value}")
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, response: Response, drop_fraction: float | None = None) -> None:
        body = response.body
        if self.headers.get("Connection", "").lower() == "close":
            self.close_connection = True
        head = self._head(response, len(body))
        if drop_fraction is not None:
            # Headers promise the full Content-Length; the connection then dies mid-body.
            self.wfile.write(head + body[: int(len(body) * drop_fraction)])
            self.wfile.flush()
            self._abort_connection()
            return
        self.wfile.write(head + body)

    def _abort_connection(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _failure(kind: str, status: int, code: str, message: str, *, retry_after: str | None = None) -> Response:
    """An injected failure in the error format of the endpoint it hits."""
    response = _failure_body(kind, status, code, message)
    if retry_after is not None:
        response.headers = {**(response.headers or {}), "Retry-After": retry_after}
    return response


def _failure_body(kind: str, status: int, code: str, message: str) -> Response:
    if kind == "login_soap":
        return Response(
            status, auth.soap_fault(code, message, "UnexpectedErrorFault"), "text/xml;charset=UTF-8"
        )
    if kind == "login_oauth":
        return Response(status, json.dumps({"error": code.lower(), "error_description": message}).encode())
    return error(status, code, message)


def _token(header: str | None) -> str:
    if not header:
        return ""
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "oauth") else ""


def _truncate_csv(body: bytes, fraction: float) -> bytes:
    """Cut a CSV page inside a record (after the header), as a broken download would."""
    if body[:2] == b"\x1f\x8b":  # a gzip page: cut the CSV inside, the stream itself stays whole
        return gzip_bytes(_truncate_csv(zlib.decompress(body, 31), fraction))
    header_end = body.find(b"\n") + 1
    cut = header_end + int((len(body) - header_end) * fraction)
    cut = max(header_end + 1, min(cut, len(body) - 2))
    return body[:cut]


class Emulator:
    """A Salesforce org behind a real HTTPS server, for the unmodified simple-salesforce client.

    ``Emulator(accounts=100, contacts=300, seed=7, host="127.0.0.1", port=0, **org_options)``;
    ``start()`` serves in a background thread and returns ``self``; ``stop()`` shuts it down.
    Org options are those of :class:`salesforce_emulator.store.Org` (``now``, ``period_days``,
    ``hidden_fields``, ``daily_limit``, ``users``, ``connected_apps``, ...). ``hostnames`` adds
    names to the certificate (for docker service names); ``ca`` reuses a
    :class:`CertificateAuthority`; ``state_dir`` keeps the CA in a directory across restarts.
    """

    def __init__(
        self,
        accounts: int = 50,
        contacts: int = 150,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        hostnames: Iterable[str] = (),
        ca: CertificateAuthority | None = None,
        state_dir: str | Path | None = None,
        users: Iterable[UserLogin] | None = None,
        connected_apps: Iterable[ConnectedApp] | None = None,
        **org_options: Any,
    ):
        self.host = host
        self.requested_port = port
        self.hostnames = [h for h in hostnames if h]
        if ca is None:
            ca = (
                CertificateAuthority.load_or_create(state_dir) if state_dir else CertificateAuthority.create()
            )
        self.authority = ca
        self.orgs: dict[str, Org] = {}
        self._orgs_lock = threading.Lock()
        # Latency and limit settings given here apply to every org, later ones included.
        self.model_defaults = {k: org_options.pop(k) for k in limits.MODEL_OPTIONS if k in org_options}
        self.org = self.add_org(
            DEFAULT_ORG,
            accounts=accounts,
            contacts=contacts,
            seed=seed,
            users=users,
            connected_apps=connected_apps,
            **org_options,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------- lifecycle
    def start(self) -> Emulator:
        """Bind, start serving in a daemon thread, and return ``self``."""
        if self._server is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        names = [*self.hostnames, "127.0.0.1", "localhost", "::1"]
        if self.host not in _WILDCARD_HOSTS:
            names.insert(0, self.host)
        context = self.authority.server_context(names)
        self._server = _Server((self.host, self.requested_port), self, context, family)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sf-emulator", daemon=True
        )
        self._thread.start()
        log.info("Salesforce emulator serving at %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and close open connections. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._server is not None

    # ------------------------------------------------------------------------------- addresses
    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return int(self._server.server_address[1])

    @property
    def public_host(self) -> str:
        """Host name clients should use: the first ``hostnames`` entry, else the bind host."""
        if self.hostnames:
            return self.hostnames[0]
        if self.host in _WILDCARD_HOSTS:
            return "127.0.0.1"
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def instance(self) -> str:
        """``host:port``, what simple-salesforce calls the instance."""
        return f"{self.public_host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``https://host:port``."""
        return f"https://{self.instance}"

    @property
    def ca_path(self) -> str:
        """Path of the CA certificate (PEM) that signs the server certificate."""
        return str(self.authority.ca_path)

    @property
    def ca_bundle_path(self) -> str:
        """The CA plus the system roots, suitable for ``REQUESTS_CA_BUNDLE``."""
        return str(self.authority.bundle_path)

    # ------------------------------------------------------------------------------- credentials
    @property
    def credentials(self) -> Credentials:
        """Demo (or first configured) username, password, security token, consumer key/secret."""
        return self.org.credentials

    @property
    def users(self) -> list[UserLogin]:
        """Users accepted by SOAP login."""
        return self.org.users

    @property
    def connected_apps(self) -> list[ConnectedApp]:
        """Connected Apps accepted by the OAuth token endpoint."""
        return self.org.connected_apps

    # ------------------------------------------------------------------------------- many orgs
    def add_org(self, key: str, **options: Any) -> Org:
        """Host another org beside the first, with its own Organization Id (from its seed), data,
        daily allowance, faults and credentials (made from the key unless ``users`` and
        ``connected_apps`` are given). Safe while serving: the next login can reach it."""
        if key in self.orgs:
            raise ValueError(f"the emulator already hosts an org {key!r}")
        if key != DEFAULT_ORG:
            options.setdefault("users", [org_user(key)])
            options.setdefault("connected_apps", [org_connected_app(key)])
            options.setdefault("org_name", f"{key} (emulated)")
        options.setdefault("seed", zlib.crc32(key.encode()) % 1_000_000)
        # Record Ids are unique across orgs, as in Salesforce: each org counts in a range of its own.
        options.setdefault("id_base", len(self.orgs) * 1_000_000_000)
        model = {**self.model_defaults, **{k: options.pop(k) for k in limits.MODEL_OPTIONS if k in options}}
        org = Org(**options)
        if any(other.org_id == org.org_id for other in self.orgs.values()):
            raise ValueError(f"org {key!r} would share Organization Id {org.org_id}; give it another seed")
        org.cursors = rest.CursorStore(org.max_open_cursors, clock=lambda: org.now().timestamp())
        org.bulk_jobs = BulkJobStore()
        org.latency, org.limits, org.inflight = LatencyModel(), limits.OrgLimits(), limits.InflightRequests()
        limits.configure(org, **model)
        with self._orgs_lock:
            self.orgs[key] = org
        return org

    def org_named(self, key: str | None) -> Org:
        """The org hosted under ``key`` (None: the first one)."""
        if key is None:
            return self.org
        try:
            return self.orgs[key]
        except KeyError:
            raise KeyError(f"no org {key!r}; the emulator hosts {sorted(self.orgs)}") from None

    def org_for_request(self, kind: str, authorization: str | None, body: bytes) -> Org:
        """The org a request is for: the one whose user or Connected App a login names, or whose
        session the bearer token is; the first org when none is (its answer is then the error)."""
        orgs = list(self.orgs.values())
        if kind == "login_soap":
            login = auth.login_username(body)
            found = [o for o in orgs if login and o.find_login_user(login)]
        elif kind == "login_oauth":
            client_id = auth.oauth_client_id(body, authorization)
            found = [o for o in orgs if client_id and o.find_connected_app(client_id)]
        else:
            token = _token(authorization)
            found = [o for o in orgs if token and o.session(token) is not None]
        return found[0] if found else self.org

    # ------------------------------------------------------------------ latency and limits
    def set_latency(self, org: str | None = None, **changes: float | None) -> dict[str, Any]:
        """Change the latency model (``page_latency_ms``, ``poll_latency_ms``, ``job_base_seconds``,
        ``job_records_per_second``) of org ``org``, or of every org (later ones too) when None;
        returns :meth:`model_settings`."""
        return self._configure(LATENCY_OPTIONS, org, changes)

    def set_limits(self, org: str | None = None, **changes: int | float | None) -> dict[str, Any]:
        """Change ``max_concurrent_requests``, ``long_running_seconds``, ``max_concurrent_bulk_jobs``
        and ``max_cursors_per_user`` of org ``org``, or of every org (later ones too) when None."""
        return self._configure(limits.LIMIT_OPTIONS, org, changes)

    def model_settings(self, org: str | None = None) -> dict[str, Any]:
        """The latency and limit settings of org ``org`` (the first org when None)."""
        return limits.settings(self.org_named(org))

    def _configure(
        self, allowed: tuple[str, ...], key: str | None, changes: dict[str, Any]
    ) -> dict[str, Any]:
        wrong = sorted(set(changes) - set(allowed))
        if wrong:
            raise ValueError(f"unknown setting(s) {', '.join(wrong)}; known: {', '.join(allowed)}")
        if key is not None:
            return limits.configure(self.org_named(key), **changes)
        with self._orgs_lock:
            orgs = list(self.orgs.values())
        for org in orgs:
            limits.configure(org, **changes)
        self.model_defaults.update(changes)
        return limits.settings(self.org)

    # ------------------------------------------------------------------------------- helpers

    def requests_session(self) -> Any:
        """A ``requests.Session`` that trusts the emulator CA on every request.

        requests lets ``REQUESTS_CA_BUNDLE`` override ``Session.verify``; this session passes
        ``verify=`` per request, which nothing overrides.
        """
        import requests

        ca = self.ca_bundle_path

        class _Session(requests.Session):
            def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
                kwargs.setdefault("verify", ca)
                return super().request(method, url, *args, **kwargs)

        return _Session()

    def login(self, flow: str = "oauth", version: str = "59.0", session: Any = None) -> tuple[str, str]:
        """Log in over HTTPS with simple-salesforce's own login code; returns (session_id, instance).

        ``flow`` is ``"oauth"`` (client credentials) or ``"soap"`` (username, password + token).
        """
        from simple_salesforce.login import SalesforceLogin, token_login

        session = session or self.requests_session()
        creds = self.credentials
        if flow == "soap":
            return SalesforceLogin(
                username=creds.username,
                password=creds.password,
                security_token=creds.security_token,
                sf_version=version,
                session=session,
                scratch_url=self.base_url,
            )
        if flow != "oauth":
            raise ValueError("flow must be 'oauth' or 'soap'")
        import base64

        basic = base64.b64encode(f"{creds.consumer_key}:{creds.consumer_secret}".encode()).decode()
        return token_login(
            f"{self.base_url}/services/oauth2/token",
            {"grant_type": "client_credentials"},
            "emulator",
            creds.consumer_key,
            {"Authorization": f"Basic {basic}"},
            None,
            session,
        )

    def salesforce(self, flow: str = "oauth", version: str = "59.0", session: Any = None) -> Any:
        """A logged-in ``simple_salesforce.Salesforce`` for this emulator (session id mode)."""
        from simple_salesforce import Salesforce

        session = session or self.requests_session()
        session_id, instance = self.login(flow, version, session)
        return Salesforce(session_id=session_id, instance=instance, version=version, session=session)

    def now(self) -> dt.datetime:
        """The org clock."""
        return self.org.now()
