"""Open a page in headless Chromium and see it as a person would: a screenshot, the console's
errors, the dialogs a script opened, values read with JavaScript. The standard library only: the
DevTools protocol over a WebSocket (``--remote-debugging-port``). Used by the test suite, the
docs' screenshot script and the report benchmark (docs/report.md#tested-in-a-browser)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Browser", "PageResult", "find_chromium"]

_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
          "--remote-allow-origins=*",
          # WebGL on the CPU (plotly's parallel coordinates need it; --disable-gpu would turn it off)
          "--enable-unsafe-swiftshader", "--use-angle=swiftshader"]


def find_chromium() -> str | None:
    """The Chromium binary: ``$TRACKKIT_CHROMIUM``, else ``chromium`` / ``chromium-browser`` /
    ``google-chrome`` on ``PATH`` (``scripts/setup-test-env.sh`` installs Debian's ``chromium``)."""
    env = os.environ.get("TRACKKIT_CHROMIUM")
    if env:
        return env if os.path.exists(env) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageResult:
    """What a page did while it loaded and drew."""

    #: console errors, uncaught exceptions and browser log errors (a CSP violation, a failed load)
    errors: list[str] = field(default_factory=list)
    #: JavaScript dialogs the page opened (``alert(1)``), by message
    dialogs: list[str] = field(default_factory=list)
    #: seconds from navigation to the page's ``data-rendered`` mark (None: it never came)
    rendered_s: float | None = None
    #: PNG bytes of the screenshot (``screenshot=True``)
    png: bytes = b""
    #: every URL the page requested (the page itself, and anything it fetched)
    requests: list[str] = field(default_factory=list)


class _Socket:
    """A minimal WebSocket client (RFC 6455): text frames out (masked), frames in, no extensions."""

    def __init__(self, url: str, timeout: float) -> None:
        m = re.match(r"ws://([^/:]+):(\d+)(/.*)", url)
        if m is None:
            raise ValueError(f"not a ws:// URL: {url}")
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"DevTools refused the WebSocket: {head[:200]!r}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def send(self, text: str) -> None:
        data = text.encode()
        n = len(data)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(head + mask + body)

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self) -> str:
        parts: list[bytes] = []
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else b""
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            op = b0 & 0x0F
            if op == 8:
                raise ConnectionError("DevTools closed the WebSocket")
            if op in (9, 10):  # ping/pong: nothing to answer for a short session
                continue
            parts.append(data)
            if b0 & 0x80:
                return b"".join(parts).decode("utf-8", "replace")


class Browser:
    """One headless Chromium with one page. ``with Browser() as b: result = b.open(path)``."""

    def __init__(self, binary: str | None = None, timeout: float = 60.0) -> None:
        self.binary = binary or find_chromium()
        if not self.binary:
            raise FileNotFoundError("no Chromium found. Fix: scripts/setup-test-env.sh (apt-get install chromium) "
                                    "or set TRACKKIT_CHROMIUM")
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="tk-chromium-")
        # its own log goes to a file (a pipe nobody reads would fill and stop the browser)
        self._log = os.path.join(self._profile, "stderr.log")
        with open(self._log, "wb") as err:
            self._proc = subprocess.Popen(
                [self.binary, *_FLAGS, f"--user-data-dir={os.path.join(self._profile, 'profile')}",
                 "--remote-debugging-port=0", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        port = self._port()
        self._ws = _Socket(self._page_url(port), timeout)
        self._id = 0
        self._events: list[dict[str, Any]] = []

    def _port(self) -> int:
        deadline = time.monotonic() + self.timeout
        text = ""
        while time.monotonic() < deadline:
            with open(self._log, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", text)
            if m:
                return int(m.group(1))
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        self.close()
        raise RuntimeError("Chromium did not start its DevTools endpoint: " + text.strip()[-500:])

    def _page_url(self, port: int) -> str:
        deadline = time.monotonic() + self.timeout
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=self.timeout) as resp:
                pages = [t for t in json.load(resp) if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
            if time.monotonic() > deadline:
                raise RuntimeError("Chromium opened no page")
            time.sleep(0.1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; events that arrive meanwhile are kept for ``open``."""
        self._id += 1
        me = self._id
        self._ws.send(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == me:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result") or {})
            if "method" in msg:
                self._events.append(msg)
                if msg["method"] == "Page.javascriptDialogOpening":  # never leave a page blocked on alert()
                    self._id += 1
                    self._ws.send(json.dumps({"id": self._id, "method": "Page.handleJavaScriptDialog",
                                              "params": {"accept": True}}))

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-able values)."""
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return res.get("result", {}).get("value")

    def open(self, path_or_url: str, *, width: int = 1280, height: int = 900, screenshot: bool = False,
             full_page: bool = False, wait_for: str = "document.body && document.body.dataset.rendered === 'yes'",
             ) -> PageResult:
        """Load a page, wait until ``wait_for`` is true (default: the report's ``data-rendered`` mark) or
        the timeout, and say what happened."""
        url = path_or_url if "://" in path_or_url else "file://" + os.path.abspath(path_or_url)
        self._events.clear()
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        t0 = time.monotonic()
        self.call("Page.navigate", url=url)
        result = PageResult()
        result.rendered_s = self.wait(wait_for, t0)
        if screenshot:
            params: dict[str, Any] = {"format": "png"}
            if full_page:
                size = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
                params.update(captureBeyondViewport=True,
                              clip={"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1})
            result.png = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        found = self.problems()
        result.errors, result.dialogs, result.requests = found.errors, found.dialogs, found.requests
        return result

    def wait(self, condition: str, since: float | None = None) -> float | None:
        """Seconds (from ``since``, default now) until the JavaScript ``condition`` holds; None at the timeout."""
        t0 = time.monotonic() if since is None else since
        while time.monotonic() < t0 + self.timeout:
            if self.evaluate(f"!!({condition})"):
                return time.monotonic() - t0
            time.sleep(0.05)
        return None

    def problems(self) -> PageResult:
        """The errors and dialogs of the page since it was opened (``errors``, ``dialogs`` filled)."""
        result = PageResult()
        self.evaluate("0")  # collect what arrived last
        for ev in self._events:
            m, p = ev["method"], ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                result.errors.append("exception: " + str(d.get("exception", {}).get("description") or d.get("text")))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                result.errors.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                            for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                result.errors.append("log: " + str(p["entry"].get("text")))
            elif m == "Page.javascriptDialogOpening":
                result.dialogs.append(str(p.get("message")))
            elif m == "Network.requestWillBeSent":
                result.requests.append(str(p.get("request", {}).get("url", "")))
        return result

    def close(self) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            try:
                ws.sock.close()
            except OSError:
                pass
        if self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, 15)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, 9)
                self._proc.wait(10)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
