"""Run lifecycle on the in-memory backend (no SDK involved)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings

import pytest

import trackkit
from trackkit import DivergedError, Status, TrackkitError, TrackkitWarning
from trackkit.events import Metrics, StatusChange
from trackkit.testing import capture


def test_log_and_finish_completed() -> None:
    with capture() as cap:
        with trackkit.init(config={"optimizer": {"lr": 0.01}}, project="p", tags=["baseline"]) as run:
            for i in range(10):
                run.log({"loss": 1.0 / (i + 1)}, step=i)
            run.log({"acc": 0.5})  # auto step = last + 1
    rec = cap.run
    assert rec.info.status is Status.COMPLETED
    assert [s for s, _ in cap.metrics("loss")] == list(range(10))
    assert cap.metrics("acc") == [(10, 0.5)]
    assert rec.info.config == {"optimizer": {"lr": 0.01}}
    assert rec.info.tags == {"baseline": ""}


def test_module_level_log_and_finish() -> None:
    with capture() as cap:
        trackkit.init(project="p")
        trackkit.log({"x": 1.0}, step=0)
        trackkit.finish()
        assert trackkit.current_run() is None
    assert cap.metrics("x") == [(0, 1.0)]


def test_exception_marks_crashed_with_traceback() -> None:
    with capture() as cap:
        with pytest.raises(ZeroDivisionError):
            with trackkit.init(project="p") as run:
                run.log({"loss": 1.0}, step=3)
                1 / 0  # noqa: B018
    info = cap.run.info
    assert info.status is Status.CRASHED
    assert "ZeroDivisionError" in info.reason
    final = [e for e in cap.run.events if isinstance(e, StatusChange)][-1]
    assert "Traceback" in final.details["traceback"] and final.step == 3


def test_nan_marks_diverged_at_step() -> None:
    with capture() as cap:
        with trackkit.init(project="p") as run:
            run.log({"loss": 1.0}, step=0)
            run.log({"loss": float("nan")}, step=1)
            run.log({"loss": float("inf")}, step=2)
    info = cap.run.info
    assert info.status is Status.DIVERGED
    first = next(e for e in cap.run.events if isinstance(e, StatusChange))
    assert first.status is Status.DIVERGED and first.step == 1 and "loss=nan" in first.reason
    pts = cap.metrics("loss")
    assert math.isnan(pts[1][1]) and pts[2][1] == math.inf  # the values themselves are kept


def test_nan_stop_policy_raises_and_marks_diverged() -> None:
    with capture() as cap:
        with pytest.raises(DivergedError):
            with trackkit.init(project="p", on_nan="stop") as run:
                run.log({"loss": 1.0}, step=0)
                run.log({"loss": float("nan")}, step=1)
                run.log({"loss": 0.0}, step=2)  # never reached
    assert cap.run.info.status is Status.DIVERGED
    assert [s for s, _ in cap.metrics("loss")] == [0, 1]


def test_system_exit_codes() -> None:
    with capture() as cap:
        with pytest.raises(SystemExit):
            with trackkit.init(project="p"):
                sys.exit(3)
    assert cap.run.info.status is Status.CRASHED and "sys.exit(3)" in cap.run.info.reason
    with capture() as cap:
        with pytest.raises(SystemExit):
            with trackkit.init(project="p"):
                sys.exit(0)
    assert cap.run.info.status is Status.COMPLETED


def test_keyboard_interrupt_is_killed() -> None:
    with capture() as cap:
        with pytest.raises(KeyboardInterrupt):
            with trackkit.init(project="p"):
                raise KeyboardInterrupt
    assert cap.run.info.status is Status.KILLED


def test_explicit_finish_status_and_bad_status() -> None:
    with capture() as cap:
        run = trackkit.init(project="p")
        with pytest.raises(trackkit.ConfigError, match="Fix"):
            run.finish("exploded")
    with capture() as cap:
        run = trackkit.init(project="p")
        run.finish("killed", "preempted")
    assert cap.run.info.status is Status.KILLED and cap.run.info.reason == "preempted"


def test_bad_values_never_raise_and_warn_once() -> None:
    class Weird:
        def __float__(self) -> float:
            raise RuntimeError("no")

    with capture() as cap:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with trackkit.init(project="p") as run:
                for i in range(5):
                    run.log({"s": "text", "n": None, "w": Weird(), "ok": i, "b": True}, step=i)
                run.log("not a mapping", step=9)  # type: ignore[arg-type]
                run.log({"big": 10**40}, step=10)
        assert run.problems["value"] == 15 and run.problems["log"] == 1
    msgs = [str(w.message) for w in caught if issubclass(w.category, TrackkitWarning)]
    assert sum("'s'" in m for m in msgs) == 1  # warned once per key
    assert cap.metrics("ok") == [(i, i) for i in range(5)]
    assert cap.metrics("b")[0] == (0, 1)
    assert cap.metrics("big") == [(10, 1e40)]


def test_numpy_and_torch_scalars() -> None:
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    with capture() as cap:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with trackkit.init(project="p") as run:
                run.log({"np": np.float32(0.5), "npi": np.int64(3), "t": torch.tensor(2.5), "multi": torch.ones(3)},
                        step=0)
    m = next(e for e in cap.run.events if isinstance(e, Metrics)).values
    assert m == {"np": 0.5, "npi": 3, "t": 2.5}
    assert run.problems["value"] == 1


def test_strict_mode_raises() -> None:
    with capture(strict=True):
        with pytest.raises(TrackkitError):
            with trackkit.init(project="p") as run:
                run.log({"s": "text"}, step=0)


def test_awkward_config_is_recorded_not_raised() -> None:
    cyc: dict[str, object] = {"a": 1}
    cyc["self"] = cyc
    cfg = {"cyc": cyc, "blob": b"\x00" * 10, "obj": object(), "big": "x" * (10 * 2**20), "nan": float("nan")}
    with capture() as cap:
        with trackkit.init(config=cfg, project="p"):
            pass
    c = cap.run.info.config
    assert c["cyc"]["self"] == "<cycle>" and c["blob"] == "<10 bytes>" and c["obj"].startswith("<object")
    assert len(c["big"]) == 10 * 2**20 and c["nan"] == "nan"


def test_public_api_all_is_complete() -> None:
    import inspect

    # submodules become attributes once imported; everything else public must be in __all__
    public = {n for n in dir(trackkit) if not n.startswith("_") and not inspect.ismodule(getattr(trackkit, n))}
    public -= {"annotations", "TYPE_CHECKING", "Any"}
    public |= {"recommend", "seed_everything", "__version__"}
    assert sorted(public) == sorted(set(trackkit.__all__)), set(public) ^ set(trackkit.__all__)
    for name in trackkit.__all__:
        assert getattr(trackkit, name) is not None


def test_import_is_light() -> None:
    code = (
        "import sys, trackkit; "
        "heavy = [m for m in ('torch', 'tensorboard', 'wandb', 'mlflow', 'pydantic', 'numpy') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_cli_help_is_light() -> None:
    code = (
        "import sys; from trackkit.cli import main; sys.argv=['trackkit','--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('torch', 'tensorboard', 'wandb', 'mlflow') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]") and "runs" in out


def test_two_runs_in_one_root_same_second_do_not_share_files(tmp_path: object) -> None:
    root = os.path.join(str(tmp_path), "j")
    with capture(root=root) as cap:
        a = trackkit.init(project="p", name="same")
        a.log({"x": 1.0}, step=0)
        a.finish()
        b = trackkit.init(project="p", name="same")
        b.log({"x": 2.0}, step=0)
        b.finish()
        assert a.dir != b.dir and a.id != b.id
    assert len(cap.runs) == 2


def test_reinit_create_new_keeps_both_runs_open_and_log_after_finish_is_named() -> None:
    with capture():
        a = trackkit.init(project="p")
        b = trackkit.init(project="p", reinit="create_new")
        assert not a.finished and not b.finished
        a.log({"x": 1.0}, step=0)
        b.log({"x": 2.0}, step=0)
        assert not a.problems and not b.problems
        a.finish()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            a.log({"x": 3.0}, step=1)
        assert a.problems["finished"] == 1 and a.logs_lost == 0
        assert "is finished" in str(caught[0].message)
        b.finish()
        with pytest.raises(trackkit.ConfigError, match="reinit"):
            trackkit.init(project="p", reinit="sometimes")
