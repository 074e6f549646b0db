"""Is a server backend reachable, and why did a delivery fail: one line for the user.

The delivery agent checks a server backend when it starts (``probe``, on a thread of its own,
never on the trainer) and names the network cause of a failed delivery (``describe_failure``).
See docs/architecture.md."""

from __future__ import annotations

import errno
import socket
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass

from .backend import BackendSpec
from .errors import TrackkitError

__all__ = ["PROBE_TIMEOUT", "describe_failure", "probe", "server_address"]

PROBE_TIMEOUT = 3.0


def server_address(spec: BackendSpec) -> tuple[str, int] | None:
    """``(host, port)`` of a backend that delivers to an ``http(s)://`` server, else None."""
    if not spec.location.lower().startswith(("http://", "https://")):
        return None
    try:
        parts = urlsplit(spec.location)
        default = 443 if parts.scheme.lower() == "https" else 80
        return (parts.hostname, parts.port or default) if parts.hostname else None
    except ValueError:  # a port that is not a number
        return None


def probe(spec: BackendSpec) -> str | None:
    """Resolve a server backend's host and connect to its port: ``""`` when it answers, else the cause
    (``"cannot resolve host 'nohost'"``, ``"connection refused on 127.0.0.1:1"``); None when there is
    nothing to check (not a server, or a proxy carries the requests). Blocks: never on the trainer."""
    addr = server_address(spec)
    if addr is None:
        return None
    host, port = addr
    scheme = urlsplit(spec.location).scheme.lower()
    if scheme in getproxies_environment() and not proxy_bypass(host):
        return None
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return ""
    except OSError as exc:
        return describe_failure(exc, spec)


def describe_failure(exc: BaseException, spec: BackendSpec) -> str:
    """Why a delivery failed, in one line: the network cause found anywhere in the exception's chain
    (SDKs wrap a refused connection three or four times), else the exception's first line."""
    host, port = server_address(spec) or ("", 0)
    where = f"{host}:{port}" if host else "the server"
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(seen) < 50:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or any(e is x for x in seen):
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
    for e in seen:
        if isinstance(e, socket.gaierror):
            return f"cannot resolve host {host!r}" if host else f"cannot resolve a host name ({e})"
        if isinstance(e, ConnectionRefusedError):
            return f"connection refused on {where}"
        if isinstance(e, TimeoutError):
            return f"no answer from {where} within the timeout"
        if isinstance(e, ConnectionResetError):
            return f"connection reset by {where}"
        if isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"no route to {where} ({e.strerror})"
    first = (str(exc).strip().splitlines() or [""])[0]
    first = first if len(first) <= 200 else first[:199] + "…"
    return first if isinstance(exc, TrackkitError) else f"{type(exc).__name__}: {first}"
