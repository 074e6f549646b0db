"""Keep secrets out of every record: key names, string values, URLs, command lines, patches.

Standard library only. Every function here is pure and never raises on odd input.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "SECRET_KEY_WORDS",
    "compile_patterns",
    "is_secret_key",
    "looks_like_secret",
    "redact_argv",
    "redact_config",
    "redact_patch",
    "redact_text",
    "strip_url_credentials",
]

REDACTED = "***REDACTED***"

#: a key is secret when one of its word parts is one of these ...
SECRET_KEY_WORDS: frozenset[str] = frozenset(
    {
        "token",
        "password",
        "passwd",
        "passphrase",
        "secret",
        "apikey",
        "accesskey",
        "privatekey",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "cookie",
    }
)
#: ... or when two neighbouring word parts form one of these
_SECRET_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"), ("client", "secret")}
)

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

#: string values that are secrets whatever key they sit under (well-known token formats)
_VALUE_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        r"\bgh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens
        r"\bgithub_pat_[A-Za-z0-9_]{20,}",
        r"\bglpat-[A-Za-z0-9_\-]{16,}",  # GitLab
        r"\bhf_[A-Za-z0-9]{20,}",  # Hugging Face
        r"\bsk-[A-Za-z0-9_\-]{16,}",  # OpenAI / Anthropic style
        r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe
        r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",  # Slack
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
        r"\bAIza[0-9A-Za-z_\-]{35}",  # Google API key
        r"\bnpm_[A-Za-z0-9]{36}",
        r"\bpypi-[A-Za-z0-9_\-]{32,}",
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
        r"(?i)\bbearer\s+[A-Za-z0-9_\-.=:/+]{16,}",
    )
)

#: scheme://user[:password]@ inside free text
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]{0,31}://)(?P<user>[^\s/@:'\"]*)(?::[^\s/@'\"]*)?@")

#: ``key = value`` / ``key: value`` / ``key := value`` / ``"key": "value"`` in free text (patches, logs);
#: ``key == value`` is a comparison or a pinned requirement (``google-auth==2.63.0``), not an assignment.
#: A key starts at a word start and is at most 128 characters, so a long line costs linear time
#: (an unbounded key tried at every letter of a 64 KiB minified line took minutes)
_ASSIGNMENT = re.compile(
    r"""(?<![A-Za-z_])(?P<key>[A-Za-z_][A-Za-z0-9_.\-]{0,127})(?P<q1>["']?)(?P<sep>[ \t]*(?::=|[:=](?!=))[ \t]*)"""
    r"""(?:(?P<quote>["'])(?P<qvalue>[^"'\n]+)(?P=quote)|(?P<value>[^\s"',;}\])]+))"""
)
#: ``--token value`` in free text
_FLAG = re.compile(r"(?P<key>--[A-Za-z][A-Za-z0-9_.\-]*)(?P<sep>[ \t]+)(?P<value>[^\s\-][^\s]*)")
#: unquoted values that are references or switches, never secrets
_HARMLESS = re.compile(
    r"^(?:none|null|nil|true|false|yes|no|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\*+REDACTED\*+|[<{]\w*[>}]?)$", re.I
)
#: a version constraint (``^2.63.0``, ``>=1.0,<2``, ``~=2.0``, ``==1.2.*``): a dependency pin such as
#: Poetry's ``google-auth = "^2.63.0"``, never a secret. The operator is required: a bare ``1234`` may be one.
_VERSION_SPEC = re.compile(
    r"^(?:\^|~=?|===?|!=|[<>]=?)[ \t]*v?\d+(?:\.[0-9A-Za-z*+!_-]+)*"
    r"(?:[ \t]*,[ \t]*(?:~=|===?|!=|[<>]=?)[ \t]*v?\d+(?:\.[0-9A-Za-z*+!_-]+)*)*$"
)
#: files whose unquoted right-hand sides are code (``self.token = token``), not literals
_CODE_SUFFIXES = frozenset(
    {
        ".py",
        ".pyi",
        ".ipynb",
        ".js",
        ".ts",
        ".jsx",
        ".tsx",
        ".java",
        ".kt",
        ".scala",
        ".go",
        ".rs",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cu",
        ".rb",
        ".php",
        ".swift",
        ".cs",
        ".jl",
        ".r",
        ".lua",
        ".m",
    }
)


def compile_patterns(extra: Iterable[str | re.Pattern[str]] | None) -> tuple[re.Pattern[str], ...]:
    """Turn user-supplied patterns (strings or compiled) into compiled regexes."""
    out: list[re.Pattern[str]] = []
    for p in extra or ():
        out.append(p if isinstance(p, re.Pattern) else re.compile(p))
    return tuple(out)


def _key_parts(key: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(key)]


def is_secret_key(key: object) -> bool:
    """True when a key name looks like it holds a secret: ``hf_token``, ``db.password``, ``API-KEY``.

    Matching is on word parts (split on punctuation and camelCase), so ``tokenizer`` and ``author``
    are not secret while ``authToken`` and ``aws_secret_access_key`` are.
    """
    if not isinstance(key, str):
        return False
    parts = _key_parts(key)
    if any(p in SECRET_KEY_WORDS for p in parts):
        return True
    return any((a, b) in _SECRET_PAIRS for a, b in itertools.pairwise(parts))


def looks_like_secret(value: str, extra: Sequence[re.Pattern[str]] = ()) -> bool:
    """True when a string value matches a known token format or an extra pattern."""
    return any(p.search(value) for p in (*_VALUE_PATTERNS, *extra))


_KEEP_USER_SCHEMES = frozenset({"ssh", "git+ssh", "ssh+git", "sftp"})


def strip_url_credentials(url: str) -> str:
    """Drop credentials from a URL.

    ``https://user:token@host/x`` and ``https://token@host/x`` become ``https://host/x``;
    ``ssh://git:pw@host/x`` becomes ``ssh://git@host/x`` (an ssh user name is not a secret and is
    needed to clone); the scp form ``git@host:org/repo.git`` is kept, ``user:pw@host:path`` loses
    ``:pw``. Anything that is not a URL is returned unchanged.
    """
    if not isinstance(url, str) or "@" not in url:
        return url
    try:
        if "://" in url:
            parts = urlsplit(url)
            if "@" not in parts.netloc:
                return url
            userinfo, _, hostport = parts.netloc.rpartition("@")
            scheme = parts.scheme.lower()
            if scheme in _KEEP_USER_SCHEMES:
                user = userinfo.split(":", 1)[0]
                netloc = f"{user}@{hostport}" if user else hostport
            else:
                netloc = hostport
            return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        # scp-like: [user[:pw]@]host:path
        m = re.match(r"^(?P<user>[^@/:\s]+)(?::[^@/\s]*)?@(?P<rest>[^@\s]+:.*)$", url)
        if m:
            return f"{m.group('user')}@{m.group('rest')}"
        return url
    except ValueError:
        # unparsable: fall back to the text rule
        return _URL_USERINFO.sub(lambda mm: mm.group("scheme"), url)


def _strip_text_urls(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        scheme = m.group("scheme")
        if scheme[:-3].lower() in _KEEP_USER_SCHEMES and m.group("user") and m.group(0).count(":") == 1:
            return m.group(0)  # ssh://git@host: plain user, no password
        if scheme[:-3].lower() in _KEEP_USER_SCHEMES and m.group("user"):
            return f"{scheme}{m.group('user')}@"
        return scheme

    return _URL_USERINFO.sub(repl, text)


def _redact_assignments(text: str, *, quoted_only: bool = False) -> tuple[str, int]:
    count = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal count
        if not is_secret_key(m.group("key")):
            return m.group(0)
        if m.group("qvalue") is not None:
            if m.group("qvalue") == REDACTED or _VERSION_SPEC.match(m.group("qvalue")):
                return m.group(0)
            count += 1
            q = m.group("quote")
            return f"{m.group('key')}{m.group('q1')}{m.group('sep')}{q}{REDACTED}{q}"
        value = m.group("value")
        if quoted_only or _HARMLESS.match(value) or _VERSION_SPEC.match(value):
            return m.group(0)
        count += 1
        return f"{m.group('key')}{m.group('q1')}{m.group('sep')}{REDACTED}"

    def flag(m: re.Match[str]) -> str:
        nonlocal count
        if not is_secret_key(m.group("key").lstrip("-")) or _HARMLESS.match(m.group("value")):
            return m.group(0)
        count += 1
        return f"{m.group('key')}{m.group('sep')}{REDACTED}"

    text = _ASSIGNMENT.sub(repl, text)
    text = _FLAG.sub(flag, text)
    return text, count


def redact_patch(patch: str, extra_patterns: Sequence[re.Pattern[str]] = ()) -> tuple[str, int]:
    """Scrub a unified diff line by line; returns ``(patch, number of lines changed)``.

    Token formats and URL credentials are removed everywhere. ``secret_name = value`` assignments are
    redacted in config-like files whatever the value; in source files (``.py``, ``.js``, ...) only when
    the value is a quoted literal, so ``self.token = token`` stays and the patch still applies.
    """
    out: list[str] = []
    changed = 0
    quoted_only = False
    for line in patch.splitlines(keepends=True):
        if line.startswith("diff --git "):
            name = line.rstrip("\n").rsplit(" b/", 1)[-1].lower()
            quoted_only = any(name.endswith(sfx) for sfx in _CODE_SUFFIXES)
            out.append(line)
            continue
        if line[:1] in ("+", "-", " ") and not line.startswith(("+++ ", "--- ")):
            new, _ = redact_text(line, extra_patterns, quoted_only=quoted_only)
            if new != line:
                changed += 1
            out.append(new)
        else:
            new, _ = redact_text(line, extra_patterns, assignments=False)
            changed += new != line
            out.append(new)
    return "".join(out), changed


def redact_text(
    text: str,
    extra_patterns: Sequence[re.Pattern[str]] = (),
    *,
    assignments: bool = True,
    quoted_only: bool = False,
) -> tuple[str, int]:
    """Scrub free text (a patch, a command line): token formats, URL credentials, ``secret_key = value``.

    Returns ``(text, n)`` with ``n`` the number of replacements (URL credential stripping not counted).
    A secret that has no recognisable format and sits under an innocent name cannot be found: that is
    the documented limit of any pattern-based scrubber.
    """
    n = 0
    for p in (*_VALUE_PATTERNS, *extra_patterns):
        text, k = p.subn(REDACTED, text)
        n += k
    text = _strip_text_urls(text)
    if assignments:
        text, k = _redact_assignments(text, quoted_only=quoted_only)
        n += k
    return text, n


def _redact_value(value: Any, extra: Sequence[re.Pattern[str]]) -> Any:
    if isinstance(value, str):
        if looks_like_secret(value, extra):
            return REDACTED
        return _strip_text_urls(value) if "@" in value else value
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return value
        return value if _redact_value(text, extra) == text else REDACTED
    return value


def redact_config(obj: Any, extra_patterns: Iterable[str | re.Pattern[str]] | None = None) -> Any:
    """A deep copy of ``obj`` with secrets replaced by ``"***REDACTED***"``.

    * a mapping key that looks secret (see :func:`is_secret_key`) has its whole value replaced,
      unless the value is ``None`` or a bool (``use_auth_token: true`` is a switch, not a secret);
    * a string value in a known token format (``ghp_…``, ``hf_…``, ``sk-…``, ``xox…``, ``AKIA…``,
      JWTs, private-key blocks, or any of ``extra_patterns``) is replaced wherever it sits;
    * URLs lose their ``user:password@`` part.

    Mappings, lists, tuples and sets are walked; other objects are deep-copied (or kept when they
    cannot be copied). Never raises.
    """
    extra = compile_patterns(extra_patterns)
    return _redact_obj(obj, extra, depth=0)


def _redact_obj(obj: Any, extra: Sequence[re.Pattern[str]], depth: int) -> Any:
    if depth > 64:
        return "<too deep>"
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            if is_secret_key(k) and v is not None and not isinstance(v, bool):
                out[k] = REDACTED
            else:
                out[k] = _redact_obj(v, extra, depth + 1)
        return out
    if isinstance(obj, list | tuple | set | frozenset):
        items = [_redact_obj(v, extra, depth + 1) for v in obj]
        if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
            try:
                return type(obj)(*items)
            except Exception:
                return tuple(items)
        try:
            return type(obj)(items)
        except Exception:
            return list(items)
    if isinstance(obj, str | bytes):
        return _redact_value(obj, extra)
    try:
        return copy.deepcopy(obj)
    except Exception:
        return obj


def redact_argv(argv: Sequence[str], extra_patterns: Sequence[re.Pattern[str]] = ()) -> list[str]:
    """Redact a command line: ``--token X``, ``--api-key=X``, ``password=X``, ``db.password=X``, token formats."""
    out: list[str] = []
    hide_next = False
    for raw in argv:
        arg = str(raw)
        if hide_next:
            hide_next = False
            if not arg.startswith("-"):
                out.append(REDACTED)
                continue
        if "=" in arg:
            key, _, value = arg.partition("=")
            if is_secret_key(key.lstrip("-+~")) and value:
                out.append(f"{key}={REDACTED}")
                continue
        elif arg.startswith("-") and is_secret_key(arg.lstrip("-")):
            hide_next = True
        text, _ = redact_text(arg, extra_patterns, assignments=False)
        out.append(text)
    return out
