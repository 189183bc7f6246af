"""A real HTTP CONNECT proxy on localhost, for tests of the hook's ``proxies`` extra.

It tunnels TLS byte for byte (it never sees the plaintext) and records each tunnel's target, so a
test can tell that a request went through it rather than straight to the server.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from types import TracebackType


class _Tunnel(socketserver.BaseRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        if method != "CONNECT":
            self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host, port = target.rsplit(":", 1)
        with self.server.lock:
            self.server.tunnels.append(target)
        with socket.create_connection((host, int(port)), timeout=30) as upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._pipe(self.request, upstream)

    @staticmethod
    def _pipe(client: socket.socket, upstream: socket.socket) -> None:
        sockets = [client, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 30)
            if not readable:
                return
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (upstream if source is client else client).sendall(data)


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.tunnels: list[str] = []
        self.lock = threading.Lock()


class ConnectProxy:
    """``with ConnectProxy() as proxy:`` serves at ``proxy.url``; ``proxy.tunnels`` lists targets."""

    def __init__(self) -> None:
        self._server = _ProxyServer()
        self._thread = threading.Thread(target=self._server.serve_forever, name="connect-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def tunnels(self) -> list[str]:
        with self._server.lock:
            return list(self._server.tunnels)

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
