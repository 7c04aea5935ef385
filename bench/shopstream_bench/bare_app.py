"""The baseline: a FastAPI endpoint that does nothing, served like the real API.

Run it with uvicorn (uvloop, httptools, one worker, no access log); `POST /order`
answers 202 without reading the body, so the difference to the real app is the app.
"""

from __future__ import annotations

from fastapi import FastAPI, Response

__all__ = ["app"]

app = FastAPI(title="bare baseline")

_ACCEPTED = b'{"status":"accepted"}'


@app.post("/order", status_code=202)
async def order() -> Response:
    return Response(_ACCEPTED, 202, media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")
