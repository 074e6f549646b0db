"""Provenance capture: the code, environment, invocation, data and seed behind a run.

``capture()`` returns a :class:`Provenance`: ``meta`` (small JSON-able facts nested by pillar) and
``files`` (artifacts: ``uncommitted_changes.patch``, ``untracked_files.txt``, ``requirements.txt``).
``capture_async()`` does the same in a daemon thread so the slow parts (git, the package list, data
hashing) stay off the caller's path. Capture never raises: a failing part is recorded as
``{"error": "..."}`` and warned once. Secrets are redacted before anything leaves this module.

Standard library only at import time; torch is consulted only if the user imported it already.
"""

from __future__ import annotations

import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..util import user_stacklevel
from ._data import FingerprintCache, cache_path, capture_data, fingerprint_path
from ._env import ENV_ALLOWLIST, KEY_PACKAGES, capture_environment, capture_invocation
from ._git import PATCH_NAME, UNTRACKED_LIST_NAME, capture_git, left_out_note
from ._outputs import output_paths
from ._secrets import (
    REDACTED,
    compile_patterns,
    is_secret_key,
    looks_like_secret,
    redact_argv,
    redact_config,
    redact_patch,
    redact_text,
    strip_url_credentials,
)
from ._seed import clear_seed_record, last_seed_record, seed_everything

__all__ = [
    "ENV_ALLOWLIST",
    "KEY_PACKAGES",
    "PATCH_NAME",
    "PILLARS",
    "REDACTED",
    "UNTRACKED_LIST_NAME",
    "FingerprintCache",
    "Provenance",
    "ProvenanceWarning",
    "cache_path",
    "capture",
    "capture_async",
    "capture_data",
    "capture_environment",
    "capture_git",
    "capture_invocation",
    "clear_seed_record",
    "fingerprint_path",
    "is_secret_key",
    "last_seed_record",
    "looks_like_secret",
    "output_paths",
    "pillar_status",
    "redact_argv",
    "redact_config",
    "redact_patch",
    "redact_text",
    "seed_everything",
    "strip_url_credentials",
]

#: the pillars ``capture`` records, in ``meta`` order (hyperparameters are the run's config, kept by the core)
PILLARS: tuple[str, ...] = ("git", "env", "invocation", "data", "seed")


class ProvenanceWarning(UserWarning):
    """Something about the run's provenance deserves attention: a dirty tree, a part that failed."""


@dataclass
class Provenance:
    """What :func:`capture` found.

    ``meta`` is JSON-able and small, nested by pillar (``{"git": {...}, "env": {...}, ...}``); a part
    turned off reads ``{"disabled": True}``, a part that failed ``{"error": "..."}``. ``files`` maps an
    artifact name to its content. ``warnings`` are the messages :meth:`emit_warnings` shows.
    ``timings_ms`` is how long each part took (not part of ``meta``: it is about trackkit, not the run).
    """

    meta: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes | str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def emit_warnings(self, stacklevel: int = 2) -> None:
        """Show each collected warning once, as :class:`ProvenanceWarning`, pointing at the first frame
        outside trackkit (the user's ``init`` line); ``stacklevel`` is kept for callers of the old form."""
        for msg in self.warnings:
            warnings.warn(msg, ProvenanceWarning, stacklevel=user_stacklevel())


def _error(exc: BaseException) -> dict[str, Any]:
    return {"error": f"{type(exc).__name__}: {exc}"}


def _scrub(obj: Any, extra: Sequence[re.Pattern[str]], hook: Callable[[str], str] | None) -> Any:
    """Last pass over everything in ``meta``: token formats and URL credentials, then the user's hook."""
    if isinstance(obj, dict):
        return {k: _scrub(v, extra, hook) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_scrub(v, extra, hook) for v in obj]
    if isinstance(obj, str):
        text, _ = redact_text(obj, extra, assignments=False)
        return hook(text) if hook is not None else text
    return obj


def _paths(value: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None) -> tuple[list[str], list[str]]:
    """``exclude_paths`` as strings, and the ``repr`` of each item that is not a path."""
    if value is None:
        return [], []
    items: Iterable[Any] = [value] if isinstance(value, str | os.PathLike) else value
    good: list[str] = []
    bad: list[str] = []
    try:
        for item in items:
            try:
                text = os.fspath(item)
            except TypeError:
                text = None
            if isinstance(text, str):
                good.append(text)
            else:
                bad.append(_short_repr(item))
    except TypeError:  # not iterable at all
        bad.append(_short_repr(value))
    return good, bad


def _short_repr(obj: Any) -> str:
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type(obj).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _capture(
    *,
    git: bool,
    environment: bool,
    invocation: bool | dict[str, Any],
    packages: bool,
    data: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    cwd: str | None,
    redact: Callable[[str], str] | None,
    extra_patterns: Iterable[str | re.Pattern[str]] | None,
    seed: bool,
    cache_file: str | None,
    exclude_paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None,
) -> Provenance:
    prov = Provenance()
    meta = prov.meta
    failed: list[str] = []
    try:
        extra = compile_patterns(extra_patterns)
    except Exception as exc:  # a bad user regex must not cost the run its record
        extra = ()
        prov.warnings.append(f"trackkit provenance: ignoring extra_patterns ({exc})")
    try:
        where = os.path.abspath(cwd) if cwd else os.getcwd()
    except OSError:
        where = None
    excludes, bad = _paths(exclude_paths)
    if bad:
        prov.warnings.append(
            f"trackkit provenance: exclude_paths: ignoring {', '.join(bad)} (not a path). Fix: pass str or os.PathLike"
        )

    def part(name: str, fn: Callable[[], Any]) -> None:
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as exc:
            meta[name] = _error(exc)
            failed.append(name)
        prov.timings_ms[name] = (time.perf_counter() - t0) * 1000.0

    def do_invocation() -> None:
        meta["invocation"] = dict(invocation) if isinstance(invocation, dict) else capture_invocation(extra, cwd=where)

    def do_git() -> None:
        if where is None:
            meta["git"] = {"available": False, "reason": "working directory is gone"}
            return
        gmeta, gfiles = capture_git(where, extra, excludes)
        meta["git"] = gmeta
        prov.files.update(gfiles)

    def do_env() -> None:
        emeta, efiles = capture_environment(extra, packages=packages)
        meta["env"] = emeta
        prov.files.update(efiles)

    def do_data() -> None:
        assert data is not None
        meta["data"] = capture_data(data, cwd=where, cache_file=cache_file)

    def do_seed() -> None:
        record = last_seed_record()
        if record is not None:
            meta["seed"] = record

    if invocation is not False:
        part("invocation", do_invocation)
    else:
        meta["invocation"] = {"disabled": True}
    if git:
        part("git", do_git)
    else:
        meta["git"] = {"disabled": True}
    if environment:
        part("env", do_env)
    else:
        meta["env"] = {"disabled": True}
    if data is not None:
        part("data", do_data)
    if seed:
        part("seed", do_seed)

    try:
        prov.meta = meta = _scrub(meta, extra, redact)
        for name, content in list(prov.files.items()):
            if isinstance(content, str):
                content, _ = redact_text(content, extra, assignments=False)
                prov.files[name] = redact(content) if redact is not None else content
    except Exception as exc:  # the user's hook failed: drop what it could not vouch for
        prov.files.clear()
        prov.meta = {name: {"error": f"redact hook failed: {exc!r}"} for name in meta}
        failed.append("redact")

    g = prov.meta.get("git", {})
    left = left_out_note(g) if isinstance(g, dict) else None
    if g.get("dirty"):
        prov.warnings.append(
            f"trackkit provenance: the git tree is dirty ({g.get('changed_files')} changed file(s)); "
            f"the changes are saved as {PATCH_NAME}. Commit before a run you want to reproduce exactly."
            + (f" Also: {left}." if left else "")
        )
    elif left:
        prov.warnings.append(f"trackkit provenance: {left}.")
    if failed:
        why = "; ".join(f"{n}: {prov.meta.get(n, {}).get('error', '?')}" for n in failed)
        prov.warnings.append(f"trackkit provenance: could not capture {why}. The run continues without it.")
    return prov


def _guarded(
    run: Callable[[], Provenance], *, warn: bool, stacklevel: int, last_net: type[BaseException] = Exception
) -> Provenance:
    """``run()`` (a :func:`_capture`) behind the last net, so capture never raises; then, when ``warn``,
    its warnings (``stacklevel`` as for :meth:`Provenance.emit_warnings`, called from here)."""
    try:
        prov = run()
    except last_net as exc:  # pragma: no cover - every part is guarded; this is the last net
        prov = Provenance(meta=_error(exc), warnings=[f"trackkit provenance failed: {exc!r}"])
    if warn:
        prov.emit_warnings(stacklevel=stacklevel)
    return prov


def capture(
    *,
    git: bool = True,
    environment: bool = True,
    invocation: bool = True,
    packages: bool = True,
    data: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    cwd: str | None = None,
    redact: Callable[[str], str] | None = None,
    extra_patterns: Iterable[str | re.Pattern[str]] | None = None,
    seed: bool = True,
    cache_file: str | None = None,
    warn: bool = True,
    exclude_paths: Iterable[str | os.PathLike[str]] | None = None,
) -> Provenance:
    """Capture the run's provenance now, on this thread. Never raises.

    ``git``, ``environment``, ``invocation``: turn a pillar off (it then reads ``{"disabled": True}``).
    ``packages=False`` skips ``requirements.txt`` (the key package versions stay). ``data``: one mapping
    ``{"name", "version", "path", "hash"}`` or a list of them; ``None`` records no data pillar.
    ``cwd``: where to look for the git repository and relative data paths (default: the process cwd).
    ``redact``: an extra ``str -> str`` scrubber run on every string in ``meta`` and every text file,
    after the built-in rules. ``extra_patterns``: regexes whose matches are redacted like token formats.
    ``seed``: include :func:`last_seed_record` when there is one. ``cache_file``: fingerprint cache
    (default :func:`cache_path`). ``warn=False`` collects warnings in ``.warnings`` without showing them.
    ``exclude_paths``: trackkit's own output (journal root, local backend stores; see :func:`output_paths`),
    never counted as uncommitted changes: left out of the dirty flag, the patch and the untracked files.
    """
    return _guarded(
        lambda: _capture(
            git=git,
            environment=environment,
            invocation=invocation,
            packages=packages,
            data=data,
            cwd=cwd,
            redact=redact,
            extra_patterns=extra_patterns,
            seed=seed,
            cache_file=cache_file,
            exclude_paths=exclude_paths,
        ),
        warn=warn,
        stacklevel=3,
    )


def capture_async(
    *,
    git: bool = True,
    environment: bool = True,
    invocation: bool = True,
    packages: bool = True,
    data: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    cwd: str | None = None,
    redact: Callable[[str], str] | None = None,
    extra_patterns: Iterable[str | re.Pattern[str]] | None = None,
    seed: bool = True,
    cache_file: str | None = None,
    warn: bool = True,
    exclude_paths: Iterable[str | os.PathLike[str]] | None = None,
) -> Future[Provenance]:
    """Like :func:`capture`, in a daemon thread; returns a Future resolving to the :class:`Provenance`.

    The invocation (argv, cwd, start time) is taken here, on the caller's thread, so a later
    ``os.chdir`` or ``sys.argv`` edit cannot change it; everything else runs in the thread. The future
    never resolves to an exception. With ``warn=True`` the warnings are shown from the capture thread;
    pass ``warn=False`` and call ``result().emit_warnings()`` to show them on your own thread.
    A daemon thread does not hold up interpreter exit: a capture still hashing data when the process
    ends is abandoned.
    """
    fut: Future[Provenance] = Future()
    fut.set_running_or_notify_cancel()
    snap: bool | dict[str, Any] = invocation
    extra: tuple[re.Pattern[str], ...] = ()
    try:
        extra = compile_patterns(extra_patterns)
    except Exception:
        pass  # _capture reports it
    if invocation:
        try:
            snap = capture_invocation(extra, cwd=os.path.abspath(cwd) if cwd else None)
        except Exception:
            snap = True  # let the thread try again and record the error
    if cwd is None:
        try:
            cwd = os.getcwd()
        except OSError:
            pass
    # taken now: a generator must not be read from another thread
    excludes: list[Any] | str | os.PathLike[str] | None = (
        exclude_paths if exclude_paths is None or isinstance(exclude_paths, str | os.PathLike) else list(exclude_paths)
    )

    def work() -> None:
        prov = _guarded(
            lambda: _capture(
                git=git,
                environment=environment,
                invocation=snap,
                packages=packages,
                data=data,
                cwd=cwd,
                redact=redact,
                extra_patterns=extra_patterns,
                seed=seed,
                cache_file=cache_file,
                exclude_paths=excludes,
            ),
            warn=warn,
            stacklevel=2,
            last_net=BaseException,  # the future must resolve, whatever happens in the thread
        )
        fut.set_result(prov)

    threading.Thread(target=work, name="trackkit-provenance", daemon=True).start()
    return fut


def pillar_status(meta: Mapping[str, Any]) -> dict[str, str]:
    """For each pillar in :data:`PILLARS`: ``ok``, ``missing``, ``disabled``, ``error`` or ``unavailable``.

    ``unavailable`` is a pillar that was looked for and is not there (not a git repository, git not
    installed). The core's ``doctor`` adds the hyperparameter pillar from the run's config.
    """
    out: dict[str, str] = {}
    for name in PILLARS:
        rec = meta.get(name)
        if not isinstance(rec, Mapping) or not rec:
            out[name] = "missing"
        elif rec.get("disabled"):
            out[name] = "disabled"
        elif "error" in rec and len(rec) == 1:
            out[name] = "error"
        elif rec.get("available") is False:
            out[name] = "unavailable"
        elif name == "seed" and rec.get("seed") is None:
            out[name] = "missing"
        else:
            out[name] = "ok"
    return out
