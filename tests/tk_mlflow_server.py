"""A real ``mlflow server`` on 127.0.0.1 for tests: started, stopped and restarted on the same port."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            lo, hi = (int(x) for x in fh.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A free loopback port BELOW the kernel's ephemeral range. A port chosen now is bound later
    (and a stopped server's port is bound again on restart); a port from the ephemeral range (what
    binding port 0 returns) can meanwhile be taken as the local end of any outgoing connection of
    the machine, an agent's HTTP request included, and the server then fails to start."""
    lo, _ = _ephemeral_range()
    rnd = random.Random()
    for _ in range(200):
        port = rnd.randrange(max(1024, lo - 12000), lo)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # pragma: no cover - nothing free below the range
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """``mlflow server`` on 127.0.0.1:PORT that can be stopped and started again on the same port
    with the same sqlite store and artifact root."""

    def __init__(self, root: Path, *, serve_artifacts: bool = False) -> None:
        self.root = root
        #: artifacts proxied by the server (``mlflow-artifacts:`` URIs, sent over HTTP) instead of
        #: a ``file://`` root the client writes to itself
        self.serve_artifacts = serve_artifacts
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = root / "mlflow.db"
        self.art = root / "artifacts"
        self.art.mkdir(exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> None:  # returns as soon as it is healthy (~5-10 s)
        if self.proc is not None and self.proc.poll() is None:
            return
        exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
        cmd = [exe] if exe else [sys.executable, "-m", "mlflow"]
        cmd += [
            "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{self.db}",
        ]  # fmt: skip
        if self.serve_artifacts:
            cmd += ["--artifacts-destination", self.art.as_uri()]
        else:
            cmd += ["--no-serve-artifacts", "--default-artifact-root", self.art.as_uri()]
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        with open(self.root / "server.log", "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self.root / "server.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"mlflow server did not come up on {self.url}:\n{tail}")
            time.sleep(0.2)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        # the port must be free again before anyone binds it
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", self.port))
                return
            except OSError:
                time.sleep(0.1)


class Blackhole:
    """Listens on a port, accepts every connection and never answers a byte."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.conns.append(conn)  # held open, never read from, never written to

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()
