"""Secrets canary: plant unique strings everywhere a secret can come from, run a real training
process to all three backends, then byte-search every file anything wrote. None may appear.

Sources: the config (secret-named keys, a URL with a password), the environment (``*_TOKEN``,
``SLURM_*``), argv (``--token X``), the git remote URL, an uncommitted change to a tracked file,
and a tracking URI with ``user:pass@`` (the MLflow server does not check it).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_mlflow_outage import MlflowServer

pytestmark = pytest.mark.slow

TRAIN = textwrap.dedent(
    """
    import os, sys
    import trackkit
    from settings import API_KEY  # noqa: F401  (the tracked file with an uncommitted secret)

    canary = os.environ["CANARY_PREFIX"]
    run = trackkit.init(
        {
            "lr": 0.1,
            "api_token": canary + "1",
            "db": {"host": "db.local", "password": canary + "2"},
            "url": "https://u:" + canary + "3@host.example/x",
            "layers": [{"name": "enc", "secret_key": canary + "2b"}],
            "note": os.environ["CUSTOM_SECRET"],  # innocent key: caught only by a configured pattern
        },
        project="canary",
        backend=sys.argv[1].split(","),
        seed=7,
        drain_timeout=120,
    )
    for step in range(30):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    run.set_tags({"team": "ml"})
    print("RUN", run.id, run.dir, flush=True)
    run.finish()
    """
)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo.parent)})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    pytest.importorskip("mlflow")
    srv = MlflowServer(tmp_path_factory.mktemp("mlflow-canary-server"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_no_canary_reaches_any_output(tmp_path: Path, server: MlflowServer) -> None:
    pytest.importorskip("wandb")
    pytest.importorskip("tensorboard")
    prefix = "CANARY" + secrets.token_hex(6).upper() + "X"
    custom = "ACME-" + secrets.token_hex(8).upper()
    canaries = {f"{prefix}{i}" for i in ("1", "2", "2b", "3", "4", "5", "5b", "6", "6b", "7", "8", "9")} | {custom}
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    (repo / "train.py").write_text(TRAIN)
    (repo / "settings.py").write_text('API_KEY = "placeholder"\nDEBUG = False\n')
    _git(repo, "add", "train.py", "settings.py")
    _git(repo, "commit", "-q", "-m", "init")
    _git(repo, "remote", "add", "origin", f"https://user:{prefix}7@github.com/x/y.git")
    # an uncommitted change to a tracked file: captured as uncommitted_changes.patch
    (repo / "settings.py").write_text(f'API_KEY = "{prefix}8"\nDEBUG = False\n')

    out = tmp_path / "out"
    dirs = {name: out / name for name in ("journal", "tb", "wandb", "wandb-data", "wandb-cache", "wandb-config",
                                          "mlflow", "home")}
    for d in dirs.values():
        d.mkdir(parents=True)
    backends = [
        f"tensorboard:{dirs['tb']}",
        f"wandb:canary?dir={dirs['wandb']}&mode=offline",
        f"mlflow:{dirs['mlflow'] / 'mlflow.db'}",
        f"mlflow://user:{prefix}9@127.0.0.1:{server.port}",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_SERVICE", "WANDB_API_KEY")}
    env.update(
        CANARY_PREFIX=prefix,
        CUSTOM_SECRET=custom,
        TRACKKIT_REDACT_PATTERNS=r"ACME-[0-9A-F]{16}",
        MY_SERVICE_TOKEN=f"{prefix}4",
        SLURM_JOB_COMMENT=f"{prefix}5",
        SLURM_JOB_ACCOUNT=f"{prefix}5b",
        TRACKKIT_ROOT=str(dirs["journal"]),
        WANDB_DIR=str(dirs["wandb"]),
        WANDB_DATA_DIR=str(dirs["wandb-data"]),
        WANDB_CACHE_DIR=str(dirs["wandb-cache"]),
        WANDB_CONFIG_DIR=str(dirs["wandb-config"]),
        WANDB_MODE="offline",
        HOME=str(dirs["home"]),
        PYTHONPATH=str(repo),
    )
    stdout, stderr = out / "stdout.txt", out / "stderr.txt"
    with open(stdout, "wb") as so, open(stderr, "wb") as se:
        proc = subprocess.run(
            [sys.executable, "train.py", ",".join(backends), "--token", f"{prefix}6", f"--api-key={prefix}6b",
             "--lr", "0.1", "--note", custom],
            cwd=repo, env=env, stdout=so, stderr=se, timeout=300,
        )
    assert proc.returncode == 0, stderr.read_text()[-3000:]
    line = next(x for x in stdout.read_text().splitlines() if x.startswith("RUN "))
    _, _run_id, run_dir = line.split()
    # the agent delivered everything (so each backend really holds the run)
    deadline = time.monotonic() + 120
    agent_log = Path(run_dir) / "agent.log"
    while "agent done" not in agent_log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "everything delivered" in agent_log.read_text(), agent_log.read_text()[-3000:]

    # the run really recorded what the canaries ride on (so a pass is not an empty search)
    journal = (Path(run_dir) / "journal.jsonl").read_text()
    assert "api_token" in journal and "--token" in journal and "***REDACTED***" in journal
    assert "uncommitted_changes.patch" in journal, "the git patch was not captured"

    searched = [out, server.root]
    found: dict[str, list[str]] = {}
    n_files = 0
    for root in searched:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            n_files += 1
            data = path.read_bytes()
            for c in canaries:
                for enc in (c.encode(), c.encode("utf-16-le")):
                    if enc in data:
                        found.setdefault(c, []).append(str(path))
    assert n_files > 20, n_files
    assert not found, "canaries leaked:\n" + "\n".join(f"{c}: {sorted(set(p))}" for c, p in sorted(found.items()))


def _search(roots: list[Path], canaries: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                found.update({c: [*found.get(c, []), str(path)] for c in canaries if c.encode() in data})
    return found


def test_undelivered_warning_and_agent_log_hide_uri_credentials(tmp_path: Path) -> None:
    """When delivery fails (nothing listens), the "not yet delivered to ..." warning on stderr, the
    agent's error lines in agent.log and the journal never show the URI's password. The agent
    lingers after the trainer left, so however long it takes to import mlflow it gets to fail
    (and log it) before the test stops it with SIGTERM."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    canary = "CANARY" + secrets.token_hex(6).upper()
    code = (
        "import sys, trackkit\n"
        "run = trackkit.init(project='c', backend=sys.argv[1], capture=False, drain_timeout=6.0, linger=300.0)\n"
        "run.log({'x': 1.0})\n"
        "run.finish()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    env["TRACKKIT_ROOT"] = str(tmp_path / "journal")
    proc = subprocess.run(
        [sys.executable, "-c", code, f"mlflow://user:{canary}@127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "not yet delivered to mlflow" in proc.stderr  # the warning is there, without the password
    assert canary not in proc.stdout + proc.stderr
    (log,) = list((tmp_path / "journal").rglob("agent.log"))
    # wait for the agent's error line (the real condition), then stop the lingering agent: on
    # SIGTERM it drains for drain_timeout (6 s) and exits, writing its last lines
    deadline = time.monotonic() + 120
    while "delivery failed" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    text = log.read_text()
    assert "agent started (pid " in text, text[-3000:]
    pid = int(text.split("agent started (pid ")[1].split(")")[0])
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if b"trackkit.agent" in fh.read():  # that agent, not a process that reused its pid
                os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
    deadline = time.monotonic() + 60
    while "agent done" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    text = log.read_text()
    assert "delivery failed" in text and "agent done" in text, text[-3000:]
    assert not _search([tmp_path], {canary})


# ------------------------------------------------------------------ the patch rules: real secrets, false positives

_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    ("name", "line", "gone"),
    [
        ("settings.env.txt", "TOKEN=abc123def456", "abc123def456"),
        ("conf.yaml", "password: hunter2", "hunter2"),
        ("conf.ini", 'api_key = "k3y-v4lue"', "k3y-v4lue"),
        ("app.py", 'api_key = "k3y-v4lue"', "k3y-v4lue"),
        ("main.go", 'password := "hunter2"', "hunter2"),
        ("conf.ini", f"aws_secret_access_key = {_AWS_SECRET}", _AWS_SECRET),
        ("notes.md", "key id AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
        ("requirements.txt", "--extra-index-url https://bob:s3cr3tpw@pypi.corp/simple", "s3cr3tpw"),
        ("conf.ini", "1token=abc123def456", "abc123def456"),
    ],
)
def test_patch_redacts_real_secrets(name: str, line: str, gone: str) -> None:
    from trackkit.provenance import redact_patch

    out, n = redact_patch(f"diff --git a/{name} b/{name}\n+{line}\n")
    assert gone not in out and n == 1, out


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("requirements.txt", "google-auth==2.63.0"),
        ("requirements.txt", "pkg==1.2.3"),
        ("requirements.txt", "pkg>=1.0"),
        ("requirements.txt", "auth-lib~=2.0"),
        ("requirements.txt", "auth-lib===2.0"),
        ("requirements.txt", "oauthlib!=3.0.0,>=2.1"),
        ("requirements.txt", "google-auth==2.63.0 ; python_version >= '3.8'"),
        ("requirements-dev.in", "google-auth-oauthlib==1.2.1  # via auth"),
        ("pyproject.toml", 'google-auth = "^2.63.0"'),
        ("pyproject.toml", 'auth-lib = ">=1.0,<2"'),
        ("check.sh", 'if [ "$token" == "$expected" ]; then'),
    ],
)
def test_patch_keeps_version_pins_and_comparisons(name: str, line: str) -> None:
    from trackkit.provenance import redact_patch

    patch = f"diff --git a/{name} b/{name}\n+{line}\n"
    assert redact_patch(patch) == (patch, 0)


def test_pinned_requirements_survive_a_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An uncommitted requirements.txt with ``google-auth==2.63.0`` is recorded as written (it read
    ``google-auth=***REDACTED***``); a token beside it in a config file is still redacted."""
    pytest.importorskip("tensorboard")
    import trackkit

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    (repo / "requirements.txt").write_text("numpy==1.26.4\n")
    (repo / "service.ini").write_text("url = http://localhost\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "init")
    pins = "numpy==1.26.4\ngoogle-auth==2.63.0\nauth-lib~=2.0\noauthlib>=3.2\n"
    (repo / "requirements.txt").write_text(pins)
    (repo / "service.ini").write_text("url = http://localhost\nTOKEN=abc123def456\n")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("TRACKKIT_ROOT", str(tmp_path / "journal"))
    run = trackkit.init(project="p", backend=f"tensorboard:{tmp_path / 'tb'}", agent="thread", seed=1)
    run.finish()
    patch = (Path(run.dir) / "artifacts" / "uncommitted_changes.patch" / "v0" / "uncommitted_changes.patch").read_text()
    for pin in pins.splitlines()[1:]:
        assert f"+{pin}\n" in patch, patch
    assert "abc123def456" not in patch and "+TOKEN=***REDACTED***" in patch
    assert run.meta["git"]["patch"]["redacted_lines"] == 1


def test_a_long_line_is_scrubbed_in_linear_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 60 KiB one-line untracked file (minified JS, a JSON dump) in a real run: the assignment rule
    tried an unbounded key at every letter and took minutes (~2 min for 64 KiB) inside init."""
    pytest.importorskip("tensorboard")
    import trackkit

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "bundle.min.js").write_text("var " + "abcdefgh" * 7_500 + "=1;\n")
    (repo / "names.txt").write_text("a." * 30_000 + "\n")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("TRACKKIT_ROOT", str(tmp_path / "journal"))
    t0 = time.monotonic()
    run = trackkit.init(project="p", backend=f"tensorboard:{tmp_path / 'tb'}", agent="thread", seed=1,
                        capture={"packages": False})
    run.finish()
    assert time.monotonic() - t0 < 20
    assert run.meta["git"]["untracked_included"] == ["bundle.min.js", "names.txt"]
