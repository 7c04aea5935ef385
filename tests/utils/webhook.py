"""A webhook receiver for the spike alerts' tests: a real HTTP server on loopback, in a thread."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["Receiver", "free_port"]


def free_port() -> int:
    """A loopback port nothing listens on (for a receiver that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """Records each POST's JSON body; answers the `failures` statuses first (one per POST), then
    200. `with Receiver() as r:` serves on `r.url` (a path with a token in it, as a Slack
    webhook's has) until the block ends."""

    TOKEN = "it-webhook-token-5f2a9c"

    def __init__(self, *failures: int, port: int = 0) -> None:
        self.failures = list(failures)
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/services/{self.TOKEN}"

    def alert_ids(self) -> list[str]:
        """The `alert_id` of every alert received ("json" payloads), in order."""
        with self.lock:
            return [a["alert_id"] for body in self.bodies for a in body.get("alerts", [])]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.bodies.append(json.loads(body))
                    status = receiver.failures.pop(0) if receiver.failures else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass  # quiet

        return Handler

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
