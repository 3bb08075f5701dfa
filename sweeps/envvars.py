"""One environment variable set for the length of a call, for the libraries that read their settings
from the process's environment (MLflow's retries and progress bars, Tune's default loggers)."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


@contextlib.contextmanager
def temporarily_set(name: str, value: str) -> Iterator[None]:
    """`name` is `value` inside; on exit it is put back as it was (unset if it was unset). Only this one
    variable is touched: `mock.patch.dict(os.environ, ...)` rewrites the whole environment on exit, so
    another thread (Ray's, the report's warm-up) could find it empty meanwhile, and a variable set
    inside would be lost."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
