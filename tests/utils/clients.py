"""A closed-loop API client in a thread: posts one order after another and remembers every
answer, for the Kafka fault tests."""

from __future__ import annotations

import threading
import time
import uuid

import httpx

__all__ = ["OrderClient"]


class OrderClient(threading.Thread):
    """Posts orders one after another; remembers every answer with its latency. A 503 must
    carry Retry-After; anything but 202 or 503 fails the test (raised in the thread)."""

    def __init__(self, url: str, api_key: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.api_key = api_key
        self.answers: list[tuple[float, int, float, str]] = []  # (sent, status, seconds, id)
        self.stop = threading.Event()

    @property
    def accepted(self) -> list[str]:
        return [oid for _, status, _, oid in list(self.answers) if status == 202]

    @property
    def unavailable(self) -> int:
        return sum(1 for _, status, _, _ in list(self.answers) if status == 503)

    def run(self) -> None:
        headers = {"X-API-Key": self.api_key}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as c:
            while not self.stop.is_set():
                oid = str(uuid.uuid4())
                body = {
                    "order_id": oid,
                    "customer_id": 4,
                    "items": [{"product_id": 2, "quantity": 1}],
                }
                sent = time.monotonic()
                resp = c.post("/order", json=body)
                self.answers.append((sent, resp.status_code, time.monotonic() - sent, oid))
                assert resp.status_code in (202, 503), resp.text
                if resp.status_code == 503:
                    assert resp.headers["Retry-After"]
                    time.sleep(0.2)
                else:
                    time.sleep(0.02)
