"""Provenance capture: git, environment, invocation, data fingerprints, seeds and secret redaction."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

from trackkit import provenance as prov
from trackkit.errors import ConfigError
from trackkit.provenance import (
    REDACTED,
    ProvenanceWarning,
    capture,
    capture_async,
    is_secret_key,
    pillar_status,
    redact_argv,
    redact_config,
    redact_patch,
    seed_everything,
    strip_url_credentials,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git executable needed")

GIT_ID = ["-c", "user.email=t@example.com", "-c", "user.name=T", "-c", "commit.gpgsign=false"]


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *GIT_ID, *args], cwd=repo, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    for var in ("PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG"):  # seed_everything sets these: undo after
        monkeypatch.setenv(var, "placeholder")
        monkeypatch.delenv(var)
    prov.clear_seed_record()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit on ``main``, a modified tracked file and untracked files."""
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "train.py").write_text("lr = 0.1\nepochs = 3\n")
    (r / "README.md").write_text("hello\n")
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "first")
    (r / "train.py").write_text("lr = 0.2\nepochs = 3\n")  # tracked change
    (r / "notes.txt").write_text("untracked note\nsecond line")  # small untracked text, no final newline
    (r / "big.bin").write_bytes(b"\0" * 10)  # binary: listed, not included
    (r / "huge.txt").write_text("x" * (prov._git.MAX_UNTRACKED_FILE_BYTES + 1))  # too large
    (r / ".env").write_text("HF_TOKEN=nothing-to-see\n")  # never read
    return r


def quiet_capture(**kw: Any) -> prov.Provenance:
    kw.setdefault("environment", False)
    kw.setdefault("warn", False)
    return capture(**kw)


# --------------------------------------------------------------------------- git


def test_git_commit_branch_dirty_patch_untracked(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    p = quiet_capture(cwd=str(repo))
    g = p.meta["git"]
    assert g["available"] is True
    assert g["commit"] == head
    assert g["branch"] == "main"
    assert g["dirty"] is True and g["changed_files"] == 1
    assert g["remote_url"] is None
    assert set(g["untracked"]) == {".env", "big.bin", "huge.txt", "notes.txt"}
    assert g["untracked_included"] == ["notes.txt"]
    patch = p.files["uncommitted_changes.patch"]
    assert isinstance(patch, str)
    assert "-lr = 0.1" in patch and "+lr = 0.2" in patch
    assert "+untracked note" in patch and "HF_TOKEN" not in patch
    listing = p.files["untracked_files.txt"]
    assert isinstance(listing, str)
    assert "notes.txt\t" in listing and "included" in listing
    assert "big.bin" in listing and "binary" in listing
    assert "larger than" in listing and "name suggests secrets" in listing
    assert p.warnings and "dirty" in p.warnings[0]


def test_patch_reproduces_the_working_tree(repo: Path, tmp_path: Path) -> None:
    p = quiet_capture(cwd=str(repo))
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    (tmp_path / "changes.patch").write_text(str(p.files["uncommitted_changes.patch"]))
    git(clone, "apply", str(tmp_path / "changes.patch"))
    assert (clone / "train.py").read_text() == (repo / "train.py").read_text()
    assert (clone / "notes.txt").read_text() == (repo / "notes.txt").read_text()


def test_clean_tree_no_patch_no_warning(repo: Path) -> None:
    git(repo, "checkout", "-q", "--", "train.py")
    for name in ("notes.txt", "big.bin", "huge.txt", ".env"):
        (repo / name).unlink()
    git(repo, "remote", "add", "origin", "git@github.com:org/proj.git")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = capture(cwd=str(repo), environment=False)
    g = p.meta["git"]
    assert g["dirty"] is False and g["untracked_count"] == 0
    assert g["remote"] == "origin" and g["remote_url"] == "git@github.com:org/proj.git"
    assert p.files == {}


def test_detached_head(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    g = quiet_capture(cwd=str(repo)).meta["git"]
    assert g["branch"] is None and g["detached"] is True and g["commit"]


def test_not_a_git_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    p = quiet_capture(cwd=str(plain))
    assert p.meta["git"] == {"available": False, "reason": "not a git repository"}
    assert p.warnings == []
    assert pillar_status(p.meta)["git"] == "unavailable"


def test_git_missing_never_raises(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "emptybin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    p = capture(cwd=str(repo), environment=True, warn=False)
    assert p.meta["git"] == {"available": False, "reason": "git executable not found"}
    assert p.meta["env"]["python"]["version"]


def test_a_failing_part_is_recorded_and_warned_once(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(prov, "capture_git", boom)
    monkeypatch.setattr(prov, "capture_environment", boom)
    with pytest.warns(ProvenanceWarning) as rec:
        p = capture(cwd=str(repo))
    assert p.meta["git"] == {"error": "RuntimeError: disk on fire"}
    assert p.meta["env"] == {"error": "RuntimeError: disk on fire"}
    assert p.meta["invocation"]["pid"] == os.getpid()
    mine = [w for w in rec if issubclass(w.category, ProvenanceWarning)]
    assert len(mine) == 1 and "git" in str(mine[0].message) and "env" in str(mine[0].message)
    assert pillar_status(p.meta)["git"] == "error"


def test_parts_can_be_turned_off(repo: Path) -> None:
    p = capture(git=False, environment=False, invocation=False, cwd=str(repo), warn=False)
    assert p.meta == {"git": {"disabled": True}, "env": {"disabled": True}, "invocation": {"disabled": True}}
    assert p.files == {}
    status = pillar_status(p.meta)
    assert status == {
        "git": "disabled",
        "env": "disabled",
        "invocation": "disabled",
        "data": "missing",
        "seed": "missing",
    }


# --------------------------------------------------------------------------- environment and invocation


def test_environment_and_requirements(tmp_path: Path) -> None:
    p = capture(git=False, cwd=str(tmp_path), warn=False)
    env = p.meta["env"]
    assert env["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert env["python"]["implementation"]
    assert env["platform"]["system"] and env["hostname"] and env["cpu_count"] >= 1
    assert env["packages"]["trackkit"]
    reqs = p.files["requirements.txt"]
    assert isinstance(reqs, str)
    lines = [ln for ln in reqs.splitlines() if ln and not ln.startswith("#")]
    assert any(ln.startswith("pytest==") for ln in lines)
    assert lines == sorted(lines, key=str.lower) or len(lines) == env["requirements"]["count"]
    assert env["requirements"]["count"] == len(lines)
    assert json.loads(json.dumps(p.meta)) == p.meta  # JSON-able
    assert capture(git=False, packages=False, warn=False).files == {}


def test_torch_details_only_when_user_imported_torch() -> None:
    code = (
        "import sys; from trackkit.provenance import capture;"
        "p = capture(git=False, invocation=False, warn=False);"
        "assert 'torch' not in sys.modules, 'capture imported torch';"
        "assert 'numpy' not in sys.modules, 'capture imported numpy';"
        "print(p.meta['env'].get('torch'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "imported" in out.stdout or out.stdout.strip() == "None"
    torch = pytest.importorskip("torch")
    env = capture(git=False, invocation=False, packages=False, warn=False).meta["env"]
    assert env["torch"]["version"] == torch.__version__
    assert "cuda_available" in env["torch"]


def test_import_is_light() -> None:
    code = "import sys, trackkit.provenance; bad = {'torch', 'numpy'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_invocation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "train.py"
    script.write_text("")
    monkeypatch.setattr(sys, "argv", [str(script), "--lr", "0.1"])
    inv = capture(git=False, environment=False, cwd=str(tmp_path), warn=False).meta["invocation"]
    assert inv["argv"] == [str(script), "--lr", "0.1"]
    assert inv["script"] == str(script)
    assert inv["cwd"] == str(tmp_path)
    assert inv["pid"] == os.getpid()
    assert inv["start_time"].endswith("Z")
    assert "user" in inv


def test_capture_async_off_the_callers_thread(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = prov.capture_git

    def spy(*a: Any, **k: Any) -> Any:
        seen.append(threading.current_thread().name)
        return real(*a, **k)

    monkeypatch.setattr(prov, "capture_git", spy)
    monkeypatch.setattr(sys, "argv", ["train.py", "--api-key", "abc"])
    fut = capture_async(cwd=str(repo), environment=False, warn=False)
    monkeypatch.setattr(sys, "argv", ["changed-later"])  # the snapshot was taken at the call
    p = fut.result(timeout=60)
    assert seen == ["trackkit-provenance"]
    assert p.meta["invocation"]["argv"] == ["train.py", "--api-key", REDACTED]
    assert p.meta["git"]["dirty"] is True
    assert p.warnings  # collected, shown by the caller via emit_warnings()


# --------------------------------------------------------------------------- data


def make_dataset(root: Path, n: int = 5) -> Path:
    d = root / "data"
    (d / "sub").mkdir(parents=True)
    for i in range(n):
        (d / ("sub" if i % 2 else "") / f"f{i}.bin").write_bytes(bytes([i]) * (100 + i))
    old = 1_600_000_000
    for f in d.rglob("*"):
        os.utime(f, (old, old))  # outside the racy window, so cacheable
    return d


def test_data_fingerprint_stable_changes_and_cached(tmp_path: Path) -> None:
    d = make_dataset(tmp_path)
    cache_file = tmp_path / "fp.json"
    spec = {"name": "toy", "version": "v1", "path": str(d)}
    first = prov.capture_data(spec, cache_file=str(cache_file))
    assert first["name"] == "toy" and first["version"] == "v1"
    assert first["files"] == 5 and first["bytes"] == sum(100 + i for i in range(5))
    assert first["cache"] == {"hits": 0, "misses": 5, "hashed_bytes": first["bytes"]}
    cached = json.loads(cache_file.read_text())["files"]
    assert len(cached) == 5 and all(str(d) in k for k in cached)

    second = prov.capture_data(spec, cache_file=str(cache_file))
    assert second["fingerprint"] == first["fingerprint"]
    assert second["cache"] == {"hits": 5, "misses": 0, "hashed_bytes": 0}  # nothing read again

    # same size, new content and mtime: detected
    target = d / "f0.bin"
    target.write_bytes(b"\x09" * 100)
    os.utime(target, (1_600_000_100, 1_600_000_100))
    third = prov.capture_data(spec, cache_file=str(cache_file))
    assert third["fingerprint"] != first["fingerprint"]
    assert third["cache"]["misses"] == 1 and third["cache"]["hashed_bytes"] == 100

    # a rename changes the fingerprint too
    target.rename(d / "renamed.bin")
    assert prov.capture_data(spec, cache_file=str(cache_file))["fingerprint"] != third["fingerprint"]


def test_data_fingerprint_independent_of_location_and_cache(tmp_path: Path) -> None:
    a = make_dataset(tmp_path / "a")
    b = make_dataset(tmp_path / "b")
    fa = prov.fingerprint_path(str(a), prov.FingerprintCache(str(tmp_path / "c1.json")))
    fb = prov.fingerprint_path(str(b), prov.FingerprintCache(str(tmp_path / "c2.json")))
    assert fa["fingerprint"] == fb["fingerprint"]
    names_only = prov.fingerprint_path(str(a), prov.FingerprintCache(str(tmp_path / "c3.json")), content=False)
    assert names_only["fingerprint"].startswith("sha256-names:") and names_only["cache"]["hashed_bytes"] == 0


def test_recent_files_are_hashed_not_cached(tmp_path: Path) -> None:
    f = tmp_path / "fresh.txt"
    f.write_text("new")
    cache_file = tmp_path / "fp.json"
    prov.capture_data({"path": str(f)}, cache_file=str(cache_file))
    assert not cache_file.exists()  # within the racy window: not trusted to the cache


def test_data_through_capture_several_and_remote(tmp_path: Path) -> None:
    d = make_dataset(tmp_path)
    p = quiet_capture(
        git=False,
        cwd=str(tmp_path),
        data=[
            {"name": "train", "version": "v2", "path": "data"},  # relative to cwd
            {"name": "remote", "path": "s3://key:CANARY-S3@bucket/x"},
            {"name": "nope", "path": "does/not/exist"},
        ],
    )
    data = p.meta["data"]
    assert data["train"]["files"] == 5 and data["train"]["abspath"] == str(d)
    assert data["remote"]["fingerprint"] is None and "CANARY" not in json.dumps(data)
    assert data["nope"]["exists"] is False
    assert pillar_status(p.meta)["data"] == "ok"
    assert os.path.exists(os.path.join(os.environ["TRACKKIT_CACHE_DIR"], "fingerprints.json"))


def test_default_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRACKKIT_CACHE_DIR", str(tmp_path / "x"))
    assert prov.cache_path() == str(tmp_path / "x" / "fingerprints.json")
    monkeypatch.delenv("TRACKKIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert prov.cache_path() == str(tmp_path / "xdg" / "trackkit" / "fingerprints.json")


# --------------------------------------------------------------------------- seeds


def test_seed_everything_repeats_random_numpy_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    np = pytest.importorskip("numpy")

    def draw() -> tuple[float, float, list[float]]:
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    rec = seed_everything(1234)
    a = draw()
    seed_everything(1234)
    b = draw()
    seed_everything(99)
    c = draw()
    assert a == b and a != c
    assert rec["seed"] == 1234 and rec["deterministic"] is False
    assert {"python", "numpy", "torch"} <= set(rec["seeded"])
    assert os.environ["PYTHONHASHSEED"] == "99"
    last = prov.last_seed_record()
    assert last is not None and last["seed"] == 99
    p = quiet_capture(git=False, invocation=False)
    assert p.meta["seed"]["seed"] == 99 and pillar_status(p.meta)["seed"] == "ok"


def test_seed_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    try:
        rec = seed_everything(7, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic is True and torch.backends.cudnn.benchmark is False
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert rec["deterministic"] is True and rec["torch_deterministic_algorithms"] is True
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = before[1]


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "1", True])
def test_seed_rejects_bad_values(bad: Any) -> None:
    with pytest.raises(ConfigError):
        seed_everything(bad)


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    "key", ["hf_token", "db.password", "API-KEY", "apiKey", "aws_secret_access_key", "authToken", "passwd", "Auth"]
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["tokenizer", "author", "max_tokens", "lr", "keyboard", "passage", "secretary"])
def test_innocent_keys(key: str) -> None:
    assert not is_secret_key(key)


def test_redact_config() -> None:
    cfg: dict[str, Any] = {
        "model": {"hf_token": "abc", "tokenizer": "bert"},
        "db.password": "pw",
        "use_auth_token": True,
        "list": [{"API-KEY": "k"}, "ghp_" + "a" * 36, "sk-" + "b" * 40],
        "url": "postgres://user:pw@db:5432/x",
        "lr": 0.1,
    }
    out = redact_config(cfg)
    assert out == {
        "model": {"hf_token": REDACTED, "tokenizer": "bert"},
        "db.password": REDACTED,
        "use_auth_token": True,
        "list": [{"API-KEY": REDACTED}, REDACTED, REDACTED],
        "url": "postgres://db:5432/x",
        "lr": 0.1,
    }
    assert cfg["model"]["hf_token"] == "abc"  # a copy
    assert redact_config({"note": "ACME-1234"}, extra_patterns=[r"ACME-\d+"]) == {"note": REDACTED}


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://user:tok@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://tok@github.com/o/r.git", "https://github.com/o/r.git"),
        ("ssh://git:pw@host:22/o/r.git", "ssh://git@host:22/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("me:pw@host:o/r.git", "me@host:o/r.git"),
        ("https://github.com/o/r.git", "https://github.com/o/r.git"),
        ("/local/path", "/local/path"),
    ],
)
def test_strip_url_credentials(url: str, clean: str) -> None:
    assert strip_url_credentials(url) == clean


def test_redact_argv() -> None:
    argv = ["t.py", "--token", "S1", "--api-key=S2", "password=S3", "db.password=S4", "--lr", "0.1", "--tokenizer", "x"]
    assert redact_argv(argv) == [
        "t.py",
        "--token",
        REDACTED,
        f"--api-key={REDACTED}",
        f"password={REDACTED}",
        f"db.password={REDACTED}",
        "--lr",
        "0.1",
        "--tokenizer",
        "x",
    ]


def test_redact_patch_keeps_code_applicable() -> None:
    patch = (
        "diff --git a/conf.yaml b/conf.yaml\n+password: hunter2\n+lr: 0.1\n"
        "diff --git a/m.py b/m.py\n+    self.token = token\n+    api_key = 'literal'\n+    def f(token: str): ...\n"
    )
    out, n = redact_patch(patch)
    assert "hunter2" not in out and "literal" not in out and n == 2
    assert "self.token = token" in out and "def f(token: str)" in out


def test_canary_secrets_reach_no_output(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "CANARY7f3a9c"
    ghp = "ghp_" + "Z" * 36
    git(repo, "remote", "add", "origin", f"https://bob:{canary}-remote@github.com/o/r.git")
    git(repo, "remote", "add", "mirror", f"ssh://git:{canary}-ssh@mirror/o/r.git")
    (repo / "conf.yaml").write_text(f"api_token: {canary}-yaml\n")
    (repo / "train.py").write_text(f'TOKEN = "{canary}-py"\nURL = "https://u:{canary}-url@x.org"\nK = "{ghp}"\n')
    (repo / "extra.cfg").write_text(f"ACME-{canary}\n")
    monkeypatch.setattr(
        sys, "argv", ["train.py", "--token", f"{canary}-argv", f"--api-key={canary}-argv2", f"password={canary}-a3"]
    )
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, *sys.argv], raising=False)
    monkeypatch.setenv("MY_TOKEN", f"{canary}-env")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("SLURM_JOB_ID", ghp)  # allowlisted name, secret-looking value
    config = {"api_token": f"{canary}-cfg", "db": {"url": f"postgres://u:{canary}-pg@h/db"}}
    p = capture(
        cwd=str(repo),
        data={"name": "d", "path": "conf.yaml", "auth": f"{canary}-data", "src": f"https://u:{canary}@h/d"},
        extra_patterns=[r"ACME-\w+"],
        warn=False,
    )
    outputs = [json.dumps(p.meta), json.dumps(redact_config(config))]
    outputs += [c if isinstance(c, str) else c.decode("utf-8", "replace") for c in p.files.values()]
    blob = "\n".join(outputs)
    assert canary not in blob and ghp not in blob
    assert "uncommitted_changes.patch" in p.files and p.meta["git"]["patch"]["redacted_lines"] >= 3
    assert p.meta["env"]["env_vars"] == {"CUDA_VISIBLE_DEVICES": "0", "SLURM_JOB_ID": REDACTED}
    assert p.meta["git"]["remote_url"] == "https://github.com/o/r.git"
    assert p.meta["git"]["remotes"]["mirror"] == "ssh://git@mirror/o/r.git"


def test_redact_hook_runs_last(tmp_path: Path) -> None:
    p = quiet_capture(git=False, cwd=str(tmp_path), redact=lambda s: s.replace(str(tmp_path), "<tmp>"))
    assert p.meta["invocation"]["cwd"] == "<tmp>"
