"""A real HTTP receiver on a free loopback port, and endpoints pointing at it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from portal.accounts.models import User
from portal.webhooks import service


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the receiver answers (statuses in turn, then 200) and what it got."""

    port: int = 0
    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    location: str | None = None

    @property
    def url(self) -> str:
        """The endpoint URL of this receiver."""
        return f"http://127.0.0.1:{self.port}/hooks"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local server that records every POST and answers as told."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            length = int(self.headers.get("Content-Length") or 0)
            state.requests.append(
                Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
            )
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if state.location and 300 <= status < 400:
                self.send_header("Location", state.location)
            body = b'{"ok": true}' if status < 300 else b"receiver says no " * 200
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def endpoint(user: User, receiver: Receiver):  # noqa: ANN201
    """(endpoint, secret): `user`'s store sends every event type to the receiver."""
    return service.create_endpoint(
        user.merchant_id,
        {"url": receiver.url, "event_types": list(service.EVENT_TYPES), "description": "Sync"},
    )
