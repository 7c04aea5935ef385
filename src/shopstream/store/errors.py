"""One error for "the store did not answer", whatever the driver raised.

The views and the CLI catch `StoreUnavailableError` and say what to check; nothing outside
`shopstream.store` needs to know pymongo's exception classes. `translated` marks a store
function or method whose MongoDB errors become `StoreUnavailableError` (the driver's error stays
attached as `__cause__`); `translating` does the same for a block (the CLI's commands).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from pymongo.errors import ConnectionFailure, PyMongoError

__all__ = ["TRANSIENT_ERRORS", "StoreUnavailableError", "translated", "translating"]

# A lost connection (a restarted server, a network blip): worth retrying, unlike an error the
# server returned (bad data or a bug), which would fail the same way again.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (ConnectionFailure,)

P = ParamSpec("P")
R = TypeVar("R")


class StoreUnavailableError(Exception):
    """The document store failed to answer (down, unreachable, timed out, or refused).

    `transient`: the connection was lost (worth retrying: a restarted server, a network blip),
    as opposed to an error the server returned, which would fail the same way again.
    """

    def __init__(self, cause: BaseException) -> None:
        self.transient = isinstance(cause, TRANSIENT_ERRORS)
        what = "did not answer" if self.transient else "failed"
        super().__init__(f"the document store {what}: {type(cause).__name__}: {cause}")
        self.cause = type(cause).__name__  # e.g. ServerSelectionTimeoutError


def translated(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PyMongoError as exc:
            raise StoreUnavailableError(exc) from exc

    return wrapper


@contextmanager
def translating() -> Iterator[None]:
    """`translated` for a block: a MongoDB error inside it becomes `StoreUnavailableError`."""
    try:
        yield
    except PyMongoError as exc:
        raise StoreUnavailableError(exc) from exc
