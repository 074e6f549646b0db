"""What a new user trips over in the first hour (issue 16): warnings that point at the user's own
line, one warning per problem, nested dicts in log(), advisory noise that can be silenced."""

from __future__ import annotations

import warnings

import trackkit
from trackkit.errors import TrackkitWarning
from trackkit.testing import capture


def _trackkit_warnings(rec: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in rec if issubclass(w.category, TrackkitWarning)]


def test_nested_dicts_in_log_are_flattened_by_the_config_rule() -> None:
    with capture() as cap:
        with trackkit.init(project="p") as run:
            run.log({"train": {"loss": 0.5, "acc": {"top1": 0.9}}, "lr": 0.1}, step=0)
            run.log({"train": {}}, step=1)  # an empty mapping holds no value: skipped, warned
        assert run.problems["value"] == 1
    assert cap.metrics("train.loss") == [(0, 0.5)]
    assert cap.metrics("train.acc.top1") == [(0, 0.9)]
    assert cap.metrics("lr") == [(0, 0.1)]
    assert "train" not in cap.run.metrics()


def test_each_different_problem_is_warned_once_and_points_at_the_users_line() -> None:
    with capture():
        run = trackkit.init(project="p")
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            for _ in range(3):
                run.log({"a": "text"})  # the same problem three times: one warning
            run.log({"a": [1.0, 2.0]})  # another problem with the same key: its own warning
            run.log({"b": "text"})  # another key: its own warning
        run.finish()
    got = _trackkit_warnings(rec)
    assert len(got) == 3, [str(w.message) for w in got]
    assert all(w.filename == __file__ for w in got), [(w.filename, w.lineno) for w in got]
    assert run.problems["value"] == 5


def test_the_init_and_module_level_warnings_point_at_the_users_line() -> None:
    with capture():
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            trackkit.init(project="p")
            trackkit.init(project="p")  # finishes the first, warned
            trackkit.finish()
            trackkit.log({"x": 1.0})  # no active run
    got = _trackkit_warnings(rec)
    assert {("still active" in str(w.message)) or ("no active run" in str(w.message)) for w in got} == {True}
    assert len(got) == 2
    assert all(w.filename == __file__ for w in got), [(w.filename, w.lineno) for w in got]


def test_a_run_that_warns_about_many_problems_stops_after_twenty() -> None:
    with capture():
        run = trackkit.init(project="p")
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            for i in range(50):
                run.log({f"k{i}": "text"})
        run.finish()
    got = _trackkit_warnings(rec)
    assert len(got) == 21 and "more than 20 different problems" in str(got[-1].message)
    assert run.problems["value"] == 50


def test_the_default_backend_and_a_seeded_run_print_no_warnings(tmp_path: object) -> None:
    """A new user's first run (TensorBoard, a seed): no trackkit warning at all — a backend limit is
    said only when it applies to this run's data."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with trackkit.init(project="p", backend=f"tensorboard:{tmp_path}/runs", root=f"{tmp_path}/j", seed=1,
                           capture={"git": False}, agent="thread") as run:
            run.log({"train/loss": 0.5, "lr": 1e-3}, step=0)
    assert _trackkit_warnings(rec) == [], [str(w.message) for w in _trackkit_warnings(rec)]


def test_a_backend_limit_is_said_once_when_this_runs_data_meets_it(tmp_path: object) -> None:
    backend = f"mlflow:{tmp_path}/mlflow.db"
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with trackkit.init(project="p", backend=backend, root=f"{tmp_path}/j", capture=False, agent="thread",
                           drain_timeout=120) as run:
            run.log({"ok": 1.0}, step=0)  # a key MLflow holds as it is: nothing to say
            run.log({"acc@top1": 0.5, "loss(val)": 0.25}, step=1)  # two mapped keys: said once
            run.log({"ok": float("inf")}, step=2)  # MLflow clamps inf: said once
    got = [str(w.message) for w in _trackkit_warnings(rec) if "said once per backend" in str(w.message)]
    assert len(got) == 2, got
    assert "'acc@top1'" in got[0] and "stored as 'acc_top1-h" in got[0] and "\n" not in got[0]
    assert "clamped" in got[1]
    assert all(w.filename == __file__ for w in _trackkit_warnings(rec) if "said once" in str(w.message))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with trackkit.init(project="p", backend=backend, root=f"{tmp_path}/j", capture=False, agent="thread",
                           advisories=False) as run:
            run.log({"acc@top1": float("inf")}, step=0)
    assert _trackkit_warnings(rec) == [], [str(w.message) for w in _trackkit_warnings(rec)]


def test_provenance_warnings_point_at_the_users_init_line(tmp_path: object) -> None:
    import os
    import subprocess

    repo = str(tmp_path)
    subprocess.run(["git", "init", "-q", repo], check=True)
    with open(os.path.join(repo, "train.py"), "w") as fh:
        fh.write("print('committed')\n")
    subprocess.run(["git", "-C", repo, "add", "train.py"], check=True)
    subprocess.run(["git", "-C", repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "x"],
                   check=True)
    with open(os.path.join(repo, "train.py"), "w") as fh:
        fh.write("print('changed')\n")  # a tracked file changed: the tree is dirty
    old = os.getcwd()
    os.chdir(repo)
    try:
        with capture(capture=True), warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            trackkit.init(project="p", seed=1).finish()
    finally:
        os.chdir(old)
    dirty = [w for w in rec if "dirty" in str(w.message)]
    assert dirty and all(w.filename == __file__ for w in dirty), [(w.filename, str(w.message)) for w in rec]
