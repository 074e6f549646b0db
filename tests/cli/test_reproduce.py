"""`trackkit reproduce`: the script it writes, and the proofs — a run with an uncommitted change, rebuilt
from its record in a fresh worktree, gives bit-identical metrics; a run whose packages were installed
editable (the README's `pip install -e`) is re-run in a clean interpreter with those packages installed
from their recorded sources, and `trackkit compare` finds both runs."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import trackkit
from trackkit.cli.reproduce import reproduce
from trackkit.events import Event, RunRecord
from trackkit.journal import list_run_dirs, load_run
from trackkit.provenance import clear_seed_record
from trackkit.reproduce import find_record, write_script

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "reproducible.py"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKKIT_")}
    # the backends are read right after the process exits: finish() must not give up on a slow agent
    # (the default drain_timeout, 10 s, can pass on a loaded machine before TensorBoard has the run)
    env["TRACKKIT_DRAIN_TIMEOUT"] = "120"
    env.update(extra)
    return env


@pytest.fixture
def repo(in_tmp: Path) -> Path:
    r = in_tmp / "repo"
    (r / "train").mkdir(parents=True)
    (r / "train" / "train.py").write_text("print('v1')\n")
    _git(r, "init", "-q")
    _git(r, "add", "-A")
    _git(r, "commit", "-q", "-m", "init")
    clear_seed_record()
    return r


def _journal_run(repo: Path, **kw: object) -> str:
    cwd = os.getcwd()
    os.chdir(repo / "train")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with trackkit.init(project="rep", backend="memory", **kw) as run:  # type: ignore[arg-type]
                run.log({"loss": 1.0})
    finally:
        os.chdir(cwd)
        clear_seed_record()
    return run.id


def test_write_script_records_every_step(repo: Path, in_tmp: Path) -> None:
    (repo / "train" / "train.py").write_text("print('v2')\n")  # an uncommitted change
    rid = _journal_run(repo, config={"lr": 0.5, "nested": {"k": 1}}, seed=11)
    rec = find_record(rid)
    path = write_script(rec, str(in_tmp / "out"))
    script = Path(path).read_text()
    commit = _git(repo, "rev-parse", "HEAD").strip()
    assert f"COMMIT={commit}" in script
    assert f"SRC_REPO={repo}" in script
    assert 'apply --whitespace=nowarn "$HERE/uncommitted_changes.patch"' in script
    assert "TRACKKIT_REPRODUCE_SKIP_INSTALL" in script
    assert "export TRACKKIT_REPRODUCE_SEED=11" in script
    assert 'cd "$WORKTREE"/train' in script
    assert os.access(path, os.X_OK)
    out = in_tmp / "out"
    assert json.loads((out / "config.json").read_text()) == {"lr": 0.5, "nested": {"k": 1}}
    assert "print('v2')" in (out / "uncommitted_changes.patch").read_text()
    req = (out / "requirements.txt").read_text()
    install = (out / "requirements-install.txt").read_text()
    assert "trackkit==" in req
    assert not [line for line in install.splitlines() if line.startswith("trackkit==")]  # editable: not from an index
    assert "local, editable or VCS package(s) from their recorded sources" in script
    assert f'install_local trackkit=={trackkit.__version__} ' in script  # from its recorded source instead
    subprocess.run(["bash", "-n", path], check=True)  # valid bash


def test_argv_paths_inside_the_repository_point_into_the_worktree(repo: Path, in_tmp: Path) -> None:
    from trackkit.events import RunInfo, RunRecord, RunStarted

    meta = {
        "git": {"available": True, "root": str(repo), "commit": "a" * 40, "branch": "main"},
        "invocation": {"orig_argv": ["python", str(repo / "train" / "train.py"), f"--cfg={repo}/c.yaml", "/etc/x"],
                       "cwd": "/somewhere/else"},
    }
    rec = RunRecord(RunInfo("r1", "p", "n", "journal"), [RunStarted("r1", "p", "n", 0.0, meta=meta)])
    script = Path(write_script(rec, str(in_tmp / "o"))).read_text()
    assert '"$PY" "$WORKTREE"/train/train.py --cfg="$WORKTREE"/c.yaml /etc/x' in script
    assert "started outside the repository" in script


def test_a_run_without_code_or_command_cannot_be_reproduced(repo: Path, in_tmp: Path) -> None:
    rid = _journal_run(repo, config={"lr": 0.1}, capture=False)
    result = CliRunner().invoke(reproduce, [rid, "--out", str(in_tmp / "x")])
    assert result.exit_code == 1
    assert "its code was not recorded" in result.output and "Fix:" in result.output


def _record_with_requirements(tmp: Path, repo: Path, requirements: str, **meta: object) -> RunRecord:
    from trackkit.events import Artifact, RunInfo, RunStarted

    req = tmp / "requirements.txt"
    req.write_text(requirements)
    full: dict[str, object] = {
        "git": {"available": True, "root": str(repo), "commit": "a" * 40, "branch": "main"},
        "invocation": {"orig_argv": ["python", "train.py"], "cwd": str(repo)},
        "env": {"python": {"version": "3.11.7", "executable": sys.executable}},
        **meta,
    }
    events: list[Event] = [RunStarted("r1", "p", "n", 0.0, meta=full),
              Artifact(str(req), "requirements.txt", "provenance", "0" * 64, req.stat().st_size)]
    return RunRecord(RunInfo("r1", "p", "n", "journal"), events)


def test_local_packages_are_installed_from_their_recorded_sources(repo: Path, in_tmp: Path) -> None:
    """Each package no index has gets one install line from where it was recorded, and one line of output."""
    outside = in_tmp / "src" / "my lib"
    outside.mkdir(parents=True)
    requirements = "\n".join([
        "# captured by trackkit",
        "click==8.1.0",
        f"proj==1.0  # editable file://{repo}",
        f"sub==0.2  # editable file://{repo}/libs/sub",
        f"mylib==0.3  # editable file://{str(outside).replace(' ', '%20')}",
        "gone==0.4  # file:///nowhere/gone",
        "vcspkg @ git+https://example.com/org/vcspkg.git@" + "b" * 40,
    ]) + "\n"
    rec = _record_with_requirements(in_tmp, repo, requirements)
    script = Path(write_script(rec, str(in_tmp / "o"), root=str(in_tmp / "journal"))).read_text()
    install = (in_tmp / "o" / "requirements-install.txt").read_text()
    assert [x for x in install.splitlines() if not x.startswith("#")] == ["click==8.1.0"]  # the index's share
    assert ("install_local proj==1.0 'the worktree (<repo>, at the recorded commit)' "
            "'commit its source (<repo>) with the code, or install it into the virtualenv yourself' -e \"$WORKTREE\""
            in script)
    assert "install_local sub==0.2 'the worktree (<repo>/libs/sub, at the recorded commit)'" in script
    assert '-e "$WORKTREE"/libs/sub' in script
    assert f"if [ -e '{outside}' ]; then install_local mylib==0.3 '{outside} (as it is now)'" in script
    assert f"-e '{outside}'; else no_local mylib==0.3 '{outside}'; fi" in script
    assert "yourself' /nowhere/gone; else no_local gone==0.4 /nowhere/gone; fi" in script  # not editable: no -e
    assert ("install_local vcspkg git+https://example.com/org/vcspkg.git@" + "b" * 40) in script
    assert "'vcspkg @ git+https://example.com/org/vcspkg.git@" + "b" * 40 + "'" in script
    assert "#   local      sub==0.2 (editable: <repo>/libs/sub)" in script
    # the re-run is journaled where the original was (unless the caller's TRACKKIT_ROOT says otherwise)
    assert f"RECORDED_ROOT={in_tmp / 'journal'}" in script
    assert 'export TRACKKIT_ROOT="${TRACKKIT_ROOT:-$RECORDED_ROOT}"' in script
    subprocess.run(["bash", "-n", str(in_tmp / "o" / "reproduce.sh")], check=True)


def test_a_local_package_that_is_gone_is_said_with_its_fix_and_the_run_goes_on(repo: Path, in_tmp: Path) -> None:
    """Run for real (TRACKKIT_REPRODUCE_REUSE_PACKAGES=1: no index): a recorded path that no longer exists is
    one line naming the package, the cause and the fix; the index packages that differ here are named."""
    commit = _git(repo, "rev-parse", "HEAD").strip()
    rec = _record_with_requirements(
        in_tmp, repo, "click==0.0.1\ngone==0.4  # editable file:///nowhere/gone\n",
        git={"available": True, "root": str(repo), "commit": commit, "branch": "main"},
        invocation={"orig_argv": ["python", str(repo / "train" / "train.py")], "cwd": str(repo)},
    )
    path = write_script(rec, str(in_tmp / "o"), root=str(in_tmp / "journal"))
    env = _env(TRACKKIT_REPRODUCE_PYTHON=sys.executable, TRACKKIT_REPRODUCE_REUSE_PACKAGES="1")
    proc = subprocess.run(["bash", path], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[reproduce] 1 recorded package(s) differ here: click " in proc.stdout
    assert ("[reproduce] could not install gone==0.4: /nowhere/gone does not exist here. Fix: put its source at "
            "/nowhere/gone and run this script again") in proc.stdout
    assert "[reproduce] warning: 1 of 1 local package(s) not installed" in proc.stdout
    assert f"journaled under {in_tmp / 'journal'}" in proc.stdout
    assert proc.stdout.rstrip().endswith("v1")  # the recorded command ran


def test_the_rerun_is_delivered_to_the_recorded_backends(repo: Path, in_tmp: Path) -> None:
    rec = _record_with_requirements(in_tmp, repo, "click==8.1.0\n",
                                    backends=[f"tensorboard:{in_tmp}/runs", "mlflow:/data/m.db"])
    script = Path(write_script(rec, str(in_tmp / "o"))).read_text()
    assert "RECORDED_BACKEND=" + shlex.quote(f"tensorboard:{in_tmp}/runs,mlflow:/data/m.db") in script
    assert 'export TRACKKIT_BACKEND="${TRACKKIT_BACKEND:-$RECORDED_BACKEND}"' in script
    assert "RECORDED_ROOT" not in script  # read through a backend: the journal root is not known
    rec = _record_with_requirements(in_tmp, repo, "", backends=["mlflow://host:5000?token=***"])
    script = Path(write_script(rec, str(in_tmp / "o2"))).read_text()
    assert "RECORDED_BACKEND" not in script and "credentials, which are never recorded" in script


def test_cli_writes_the_script_without_running_it(repo: Path, in_tmp: Path) -> None:
    rid = _journal_run(repo, config={"lr": 0.1}, seed=2)
    result = CliRunner().invoke(reproduce, [rid])
    assert result.exit_code == 0, result.output
    assert (in_tmp / f"reproduce-{rid}" / "reproduce.sh").is_file()
    assert not (in_tmp / f"reproduce-{rid}" / "worktree").exists()


# ---------------------------------------------------------------- the proof


def _tensorboard_metrics(location: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, object]]:
    from trackkit.registry import load_reader, parse_backend

    reader = load_reader(parse_backend(f"tensorboard:{location}"))
    (info,) = reader.list_runs("reproducible")
    rec = reader.read_run(info.run_id)
    return rec.metrics(), rec.info.config


@pytest.mark.slow
def test_reproduce_gives_bit_identical_metrics(in_tmp: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("tensorboard")
    t0 = time.monotonic()
    repo = in_tmp / "project"
    (repo / "train").mkdir(parents=True)
    shutil.copy(EXAMPLE, repo / "train" / "reproducible.py")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "the example")
    commit = _git(repo, "rev-parse", "HEAD").strip()
    # an uncommitted, behaviour-changing edit of a tracked file, and an untracked helper file
    src = (repo / "train" / "reproducible.py").read_text()
    edited = src.replace('"lr": 0.05,', '"lr": 0.03,')
    edited = edited.replace("DEFAULTS = {", "# lr tuned, not committed\nDEFAULTS = {")
    assert edited != src
    (repo / "train" / "reproducible.py").write_text(edited)
    (repo / "train" / "NOTES.txt").write_text("lr 0.03 looks better\n")

    journal = in_tmp / "journal"
    proc = subprocess.run(
        [sys.executable, "reproducible.py", "--seed", "7", "--steps", "40"], cwd=repo / "train",
        env=_env(TRACKKIT_ROOT=str(journal), TRACKKIT_BACKEND=f"tensorboard:{in_tmp / 'tb-original'}"),
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    match = re.search(r"^run (\w+) completed", proc.stdout, re.M)
    assert match, proc.stdout
    rid = match.group(1)

    out = in_tmp / "reproduction"
    proc = subprocess.run(
        [sys.executable, "-m", "trackkit", "reproduce", rid, "--root", str(journal), "--out", str(out), "--run"],
        cwd=in_tmp,
        env=_env(TRACKKIT_REPRODUCE_SKIP_INSTALL="1", TRACKKIT_ROOT=str(in_tmp / "journal-2"),
                 TRACKKIT_BACKEND=f"tensorboard:{in_tmp / 'tb-reproduced'}"),
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "applying uncommitted_changes.patch" in proc.stdout
    worktree = out / "worktree"
    assert _git(worktree, "rev-parse", "HEAD").strip() == commit
    assert (worktree / "train" / "reproducible.py").read_text() == edited
    assert (worktree / "train" / "NOTES.txt").is_file()

    original, cfg1 = _tensorboard_metrics(in_tmp / "tb-original")
    reproduced, cfg2 = _tensorboard_metrics(in_tmp / "tb-reproduced")
    assert cfg1 == cfg2 and cfg1["lr"] == 0.03  # the uncommitted default was restored by the patch
    assert list(original) == ["train/loss"] and len(original["train/loss"]) == 40
    assert original == reproduced  # same steps, same float values, exactly

    # the journals hold the float64 values (TensorBoard stores float32): identical too
    (d1,) = list_run_dirs(str(journal))
    (d2,) = list_run_dirs(str(in_tmp / "journal-2"))
    j1, j2 = load_run(d1).metrics(), load_run(d2).metrics()
    assert j1 == j2 and [s for s, _ in j1["train/loss"]] == list(range(40))
    assert all(a[1].hex() == b[1].hex() for a, b in zip(j1["train/loss"], j2["train/loss"], strict=True))
    print(f"reproduce round trip: {time.monotonic() - t0:.1f} s")


# ---------------------------------------------------------------- local and editable packages, end to end

TINYLIB_PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "tinylib"
version = "0.1"
"""

TRAIN = """import trackkit
import tinylib

with trackkit.init(project="local-pkgs", config={"factor": tinylib.FACTOR}, seed=1) as run:
    run.log({"x": tinylib.FACTOR * 2.0}, step=0)
print(f"run {run.id} {run.status.value}")
print(f"trackkit from {trackkit.__file__}")
print(f"tinylib from {tinylib.__file__} factor {tinylib.FACTOR}")
"""


def _bare_venv(path: Path) -> Path:
    """A venv that sees the test interpreter's installed packages (pydantic, click, rich, pip, setuptools) as a
    plain path: none of their editable installs (trackkit's) is active in it. Cheap: no pip, no download."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    py = path / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "dev-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return py


@pytest.mark.slow
def test_reproduce_installs_editable_packages_from_their_recorded_sources(in_tmp: Path) -> None:
    """The README installs trackkit editable (`pip install -e`), which no index has: the re-run in a clean
    interpreter failed with `No module named 'trackkit'`. Now each recorded local package is installed from
    its recorded source (trackkit from its path; a package of the repository from the worktree, with the
    uncommitted change), the script says so, and `trackkit compare` finds the original and the re-run."""
    t0 = time.monotonic()
    tk_src = in_tmp / "trackkit-src"  # as after `git clone .../trackkit && pip install -e trackkit`
    shutil.copytree(ROOT / "trackkit", tk_src / "trackkit", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tk_src / name)
    proj = in_tmp / "project"
    lib = proj / "libs" / "tinylib"
    (lib / "tinylib").mkdir(parents=True)
    (lib / "pyproject.toml").write_text(TINYLIB_PYPROJECT)
    (lib / "tinylib" / "__init__.py").write_text("FACTOR = 2.0\n")
    (proj / "train.py").write_text(TRAIN)
    (proj / ".gitignore").write_text("*.egg-info/\n__pycache__/\n")
    _git(proj, "init", "-q")
    _git(proj, "add", "-A")
    _git(proj, "commit", "-q", "-m", "init")
    (lib / "tinylib" / "__init__.py").write_text("FACTOR = 3.0\n")  # uncommitted: the patch brings it back

    py1 = _bare_venv(in_tmp / "venv-original")
    subprocess.run([str(py1), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
                    "-e", str(tk_src), "-e", str(lib)], check=True, capture_output=True, timeout=180)
    journal = in_tmp / "journal"
    proc = subprocess.run([str(py1), "train.py"], cwd=proj, capture_output=True, text=True, timeout=120,
                          env=_env(TRACKKIT_ROOT=str(journal), TRACKKIT_BACKEND="memory"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rid = re.search(r"^run (\w+) completed", proc.stdout, re.M).group(1)  # type: ignore[union-attr]
    assert f"trackkit from {tk_src}" in proc.stdout and "factor 3.0" in proc.stdout

    clean = _bare_venv(in_tmp / "venv-clean")  # the interpreter of the re-run has neither package
    assert subprocess.run([str(clean), "-c", "import trackkit"], capture_output=True).returncode == 1
    out = in_tmp / "reproduction"
    proc = subprocess.run(
        [sys.executable, "-m", "trackkit", "reproduce", rid, "--root", str(journal), "--out", str(out), "--run"],
        cwd=in_tmp, env=_env(TRACKKIT_REPRODUCE_PYTHON=str(clean), TRACKKIT_REPRODUCE_REUSE_PACKAGES="1"),
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    said = proc.stdout
    assert "every recorded package is here at its recorded version" in said
    assert f"[reproduce] installed trackkit==0.1.0 from {tk_src} (as it is now)" in said
    assert "[reproduce] installed tinylib==0.1 from the worktree (<repo>/libs/tinylib, at the recorded commit)" in said
    assert f"trackkit from {tk_src}" in said  # the re-run imports them from there
    assert f"tinylib from {out / 'worktree' / 'libs' / 'tinylib'}" in said and "factor 3.0" in said
    assert f"journaled under {journal}" in said

    hint = re.search(r"trackkit compare (\w+) (\w+) --root (\S+)", proc.stderr)
    assert hint and hint.group(1) == rid and hint.group(3) == str(journal), proc.stderr
    new = hint.group(2)
    cmp = subprocess.run([sys.executable, "-m", "trackkit", "compare", rid, new, "--root", str(journal), "--json"],
                         cwd=in_tmp, env=_env(), capture_output=True, text=True, timeout=60)
    assert cmp.returncode == 0, cmp.stderr
    assert [r["run_id"] for r in json.loads(cmp.stdout)["runs"]] == [rid, new]
    runs = {d.rsplit(os.sep, 1)[-1]: load_run(d).metrics() for d in list_run_dirs(str(journal))}
    assert runs[rid] == runs[new] == {"x": [(0, 6.0)]}
    print(f"local packages round trip: {time.monotonic() - t0:.1f} s")
