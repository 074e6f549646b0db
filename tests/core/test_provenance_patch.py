"""The uncommitted-changes patch holds the user's changes only (issue 16.1): trackkit's own output
(the journal root, the local backends' stores) is never counted as a change, and untracked files
are capped by size and count with a note naming what was left out. Real git repositories, real runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest

import trackkit
from trackkit import provenance as prov
from trackkit.backend import BackendSpec
from trackkit.provenance import ProvenanceWarning, capture

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git executable needed")

GIT_ID = ["-c", "user.email=t@example.com", "-c", "user.name=T", "-c", "commit.gpgsign=false"]
#: what trackkit and its local backends write into the working directory
OWN = (".trackkit", "runs/", "mlflow.db", "mlartifacts")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_ID, *args], cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.delenv("TRACKKIT_ROOT", raising=False)  # the default ./.trackkit, inside the repository
    for var in ("PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG"):  # seed_everything sets these: undo after
        monkeypatch.setenv(var, "placeholder")
        monkeypatch.delenv(var)
    prov.clear_seed_record()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository without a .gitignore, one commit, the cwd of the test."""
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "train.py").write_text("lr = 0.1\n")
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "first")
    monkeypatch.chdir(r)
    return r


def one_run(backend: Any = "tensorboard:./runs", **kw: Any) -> tuple[trackkit.Run, list[str]]:
    """A real run (thread agent: delivered when ``finish`` returns); returns it and its provenance warnings."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        run = trackkit.init(project="p", backend=backend, agent="thread", seed=1, drain_timeout=60, **kw)
        run.log({"loss": 1.0}, step=0)
        run.finish()
    return run, [str(w.message) for w in rec if issubclass(w.category, ProvenanceWarning)]


def artifact(run: trackkit.Run, name: str) -> str:
    return (Path(run.dir) / "artifacts" / name / "v0" / name).read_text()


# ------------------------------------------------------------------ trackkit's own output


def test_trackkit_output_is_not_in_the_patch_nor_untracked(repo: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    backends = ["tensorboard:./runs", "mlflow:./mlflow.db"]
    (repo / "notes.txt").write_text("the user's own note\n")
    one_run(backends)
    assert (repo / ".trackkit").is_dir() and (repo / "runs").is_dir() and (repo / "mlflow.db").is_file()
    assert (repo / "mlartifacts").is_dir()

    run, _ = one_run(backends)
    g = run.meta["git"]
    assert g["untracked"] == ["notes.txt"] and g["untracked_count"] == 1
    assert g["dirty"] is False
    assert set(g["excluded"]["paths"]) >= {".trackkit", "runs", "mlflow.db", "mlartifacts"}
    assert g["excluded"]["untracked_files"] > 5  # the first run's journal, event file, database, artifacts
    patch = artifact(run, "uncommitted_changes.patch")
    assert "+the user's own note" in patch
    assert not [own for own in OWN if f"b/{own}" in patch], patch[:2000]
    assert artifact(run, "untracked_files.txt").splitlines() == ["notes.txt\t20\tincluded"]

    # applying the patch (what `trackkit reproduce` does) brings the user's file, no old journal
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    (tmp_path / "p.patch").write_text(patch)
    git(clone, "apply", "--whitespace=nowarn", str(tmp_path / "p.patch"))
    assert sorted(p.name for p in clone.iterdir() if p.name != ".git") == ["notes.txt", "train.py"]


def test_committed_trackkit_output_does_not_make_the_tree_dirty(repo: Path) -> None:
    """A user who committed ``mlflow.db`` and the journal: the next runs change them, and that is not
    the user's change (before: every run was dirty, with a binary diff of the database)."""
    pytest.importorskip("mlflow")
    one_run("mlflow:./mlflow.db")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "oops: committed the tracking data")
    one_run("mlflow:./mlflow.db")  # writes into the committed mlflow.db
    assert "mlflow.db" in git(repo, "status", "--porcelain")

    (repo / "train.py").write_text("lr = 0.2\n")  # the user's one change
    run, warned = one_run("mlflow:./mlflow.db")
    g = run.meta["git"]
    assert g["dirty"] is True and g["changed_files"] == 1, g
    assert g["excluded"]["changed_files"] >= 1
    assert g["patch"]["binary_files_not_saved"] == []
    patch = artifact(run, "uncommitted_changes.patch")
    assert "+lr = 0.2" in patch and "mlflow.db" not in patch
    assert [w for w in warned if "(1 changed file(s))" in w], warned


def test_exclusions_hold_through_symlinks(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal root named through a symlink to the repository, a TensorBoard logdir that is a
    symlink inside it: git names the real paths, the exclusion still holds."""
    pytest.importorskip("tensorboard")
    link = tmp_path / "link"
    link.symlink_to(repo)
    (repo / "outputs" / "tb").mkdir(parents=True)
    (repo / "tb").symlink_to(repo / "outputs" / "tb")
    (repo / "outputs" / "mine.txt").write_text("mine\n")
    monkeypatch.setenv("TRACKKIT_ROOT", str(link / "journal"))
    one_run(f"tensorboard:{link}/tb")
    assert list((repo / "outputs" / "tb").iterdir()) and list((repo / "journal").iterdir())

    run, _ = one_run(f"tensorboard:{link}/tb")
    g = run.meta["git"]
    assert g["untracked"] == ["outputs/mine.txt"], g["untracked"]
    assert set(g["excluded"]["paths"]) == {"journal", "outputs/tb", "tb"}


def test_paths_outside_or_holding_the_repository_exclude_nothing(repo: Path, tmp_path: Path) -> None:
    (repo / "a.txt").write_text("a\n")
    p = capture(cwd=str(repo), environment=False, warn=False,
                exclude_paths=[str(tmp_path / "elsewhere"), str(repo), str(tmp_path), "a.txt/../nothing"])
    g = p.meta["git"]
    assert g["untracked"] == ["a.txt"]
    assert g["excluded"]["paths"] == [] and g["excluded"]["untracked_files"] == 0
    assert g["excluded"]["not_excluded"] == [str(repo), str(tmp_path)]
    # a relative path is taken against the capture's cwd
    g = capture(cwd=str(repo), environment=False, warn=False, exclude_paths=["a.txt"]).meta["git"]
    assert g["untracked_count"] == 0 and g["excluded"] == {"paths": ["a.txt"], "changed_files": 0, "untracked_files": 1}


def test_bad_exclude_paths_are_one_warning_line(repo: Path) -> None:
    p = capture(cwd=str(repo), environment=False, warn=False, exclude_paths=[3, None, str(repo / "x")])  # type: ignore[list-item]
    (msg,) = [w for w in p.warnings if "exclude_paths" in w]
    assert "3, None" in msg and "not a path" in msg and "Fix:" in msg and "\n" not in msg
    assert p.meta["git"]["available"] is True


def test_output_paths_of_each_backend(tmp_path: Path) -> None:
    from trackkit.provenance import output_paths

    specs = [
        BackendSpec("tensorboard", str(tmp_path / "tb")),
        BackendSpec("mlflow", str(tmp_path / "m" / "store.db")),
        BackendSpec("mlflow", f"sqlite:///{tmp_path}/s/x.db"),
        BackendSpec("mlflow", "http://127.0.0.1:5000"),
        BackendSpec("wandb", "proj", {"dir": "wb"}),
        BackendSpec("wandb", "proj"),
        BackendSpec("memory", ""),
    ]
    out = output_paths("./.trackkit", specs, cwd=str(tmp_path), environ={"WANDB_DIR": str(tmp_path / "w")})
    t = str(tmp_path)
    assert out[0] == f"{t}/.trackkit"
    for want in (f"{t}/tb", f"{t}/m/store.db", f"{t}/m/store.db.trackkit-lock", f"{t}/m/mlartifacts", f"{t}/m/mlruns",
                 f"{t}/s/x.db", f"{t}/s/mlartifacts", f"{t}/mlruns", f"{t}/wb/wandb", f"{t}/w/wandb"):
        assert want in out, want
    assert not [p for p in out if "5000" in p]
    assert output_paths(None, [BackendSpec("wandb", "p")], cwd=t, environ={}) == [f"{t}/wandb", f"{t}/.wandb"]


# ------------------------------------------------------------------ caps, said


def test_untracked_files_are_capped_by_size_and_count_with_a_note(repo: Path) -> None:
    pytest.importorskip("tensorboard")
    from trackkit.provenance import _git as caps  # the package's own constants, read by its test

    count_cap = 200  # the chosen cap, stated here: more untracked files than this are a dump, not code
    assert getattr(caps, "MAX_UNTRACKED_FILES", count_cap) == count_cap
    big = caps.MAX_UNTRACKED_FILE_BYTES - 4096
    n_big = caps.MAX_UNTRACKED_TOTAL_BYTES // big + 3  # the last three meet the total cap
    n_small = count_cap + 30
    for i in range(n_big):
        (repo / f"b_{i:03d}.txt").write_text(("y" * 63 + "\n") * (big // 64))
    for i in range(n_small):
        (repo / f"s_{i:03d}.txt").write_text(f"small {i}\n")
    (repo / "data.csv").write_text("z" * (caps.MAX_UNTRACKED_FILE_BYTES + 1))
    (repo / "model.bin").write_bytes(b"\0\1\2")

    run, warned = one_run()
    g = run.meta["git"]
    total = n_big + n_small + 2
    assert g["untracked_count"] == total
    assert g["patch"]["untracked_included"] == count_cap
    assert g["patch"]["bytes"] < caps.MAX_UNTRACKED_TOTAL_BYTES + 100_000
    left = g["untracked_left_out"]
    assert left["count"] == total - count_cap
    reasons = {k: v["count"] for k, v in left["reasons"].items()}
    assert reasons == {
        f"larger than {caps.MAX_UNTRACKED_FILE_BYTES} bytes": 1,
        "binary": 1,
        f"total cap of {caps.MAX_UNTRACKED_TOTAL_BYTES} bytes reached": 3,
        f"count cap of {count_cap} files reached": total - count_cap - 5,
    }
    assert left["reasons"]["binary"]["files"] == ["model.bin"]
    # the warning says it, naming files, once
    (msg,) = [w for w in warned if "not in uncommitted_changes.patch" in w]
    assert f"{left['count']} untracked file(s)" in msg
    assert "data.csv" in msg and "model.bin" in msg and "count cap" in msg and "untracked_files.txt" in msg
    listing = artifact(run, "untracked_files.txt")
    assert listing.count("\tincluded") == count_cap and "skipped (count cap" in listing


def test_a_clean_tree_with_trackkit_output_warns_nothing(repo: Path) -> None:
    pytest.importorskip("tensorboard")
    one_run()
    run, warned = one_run()
    assert warned == [] and "patch" not in run.meta["git"] and "untracked_left_out" not in run.meta["git"]
