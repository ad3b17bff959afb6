"""Which tracking-store errors are worth retrying, and the bounded backoff between tries.

A server that is down, restarting or overloaded, and a SQLite file another process holds locked, are transient:
the record is kept and sent later. A rejected record (a bad value, a changed param) is not: retrying would never
succeed, so it is raised at once.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

# MLflow's own HTTP retries default to 7 tries with a factor-2 backoff and a 120 s timeout per request: minutes of
# a blocked training loop per record while a server is down. The tracker does its own, bounded, retrying and
# journals what cannot be sent, so MLflow's are kept short (unless the user set them).
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# How long the end of a run waits for an unreachable server before leaving its records in the journal.
END_WAIT_ENV = "REID_TRACKING_END_WAIT_S"
DEFAULT_END_WAIT_S = 300.0
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0

_TRANSIENT_MESSAGES = (
    "failed with exception",  # MLflow's wrapper around connection errors (refused, reset, max retries)
    "failed with timeout exception",
    "database is locked",
    "connection refused",
    "max retries exceeded",
    "could not connect",
    "server closed the connection",
    "temporarily unavailable",
)


def use_short_http_retries() -> None:
    """Make MLflow's per-request HTTP retries short, leaving any value the user set."""
    for name, value in MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)


def end_wait_s() -> float:
    raw = os.environ.get(END_WAIT_ENV)
    if raw is None:
        return DEFAULT_END_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{END_WAIT_ENV}={raw!r}: expected a number of seconds") from None
    if value < 0:
        raise ValueError(f"{END_WAIT_ENV}={raw!r}: expected a number of seconds >= 0")
    return value


def backoff_s(attempt: int) -> float:
    """Seconds before try ``attempt`` + 1 (0-based): 0.5, 1, 2, ... capped at :data:`MAX_BACKOFF_S`."""
    return min(FIRST_BACKOFF_S * (2 ** attempt), MAX_BACKOFF_S)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` says the store could not be reached (retry later) rather than that it refused the record."""
    from mlflow.exceptions import MlflowException

    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    try:
        import requests

        if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return True
        if isinstance(error, requests.exceptions.HTTPError) and error.response is not None:
            return error.response.status_code >= 500 or error.response.status_code == 429
    except ImportError:  # requests comes with MLflow; without it only MLflow's own errors are seen
        pass
    if isinstance(error, MlflowException):
        status = error.get_http_status_code()
        if status in (429, 502, 503, 504):
            return True
        return any(m in str(error).lower() for m in _TRANSIENT_MESSAGES)
    return any(m in str(error).lower() for m in _TRANSIENT_MESSAGES)


def short_reason(error: BaseException, limit: int = 160) -> str:
    """The first line of ``error``, cut to ``limit`` characters, for a one-line warning."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def redact_uri(uri: str) -> str:
    """A tracking URI with any password replaced by ``***``."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
