"""A workaround, in the api-server, for the connection form's Test button on Airflow 3.3.1-3.3.2.

The UI posts `port: 0` to POST /api/v2/connections/test for a connection whose port is empty
(every Salesforce connection: the type hides the port), and the server's hardening takes that for
another destination and answers 400 "The host or port to test differs from the stored connection"
for good and bad credentials alike. This middleware removes a zero port from that one request's
body, so the test runs against the stored connection as intended. Nothing else is touched.
"""

from __future__ import annotations

import json
from typing import Any

TEST_PATH = "/api/v2/connections/test"


class PortlessConnectionTestFix:
    """ASGI middleware: drop `"port": 0` from a connection test's JSON body."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Pass every request through; drop a zero port from the connection test's body."""
        if scope.get("type") != "http" or scope.get("method") != "POST" or scope.get("path") != TEST_PATH:
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay(message, receive), send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        body = fixed_body(body)
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        replay = _replay({"type": "http.request", "body": body}, receive)
        await self.app({**scope, "headers": headers}, replay, send)


def fixed_body(body: bytes) -> bytes:
    """The request body without a zero port; anything that is not that JSON is passed as it is."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and data.get("port") == 0:
        data.pop("port")
        return json.dumps(data).encode()
    return body


def _replay(first: dict, receive: Any) -> Any:
    """`first` once, then the client's own messages (a disconnect, say)."""
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return first
        return await receive()

    return replayed
