"""TensorBoard logdirs other tools wrote, read by trackkit's reader (docs/backends/tensorboard.md, "Reading logdirs
other tools wrote"): fixtures made by torch's ``SummaryWriter`` and tensorboardX directly — run boundaries, names,
legacy and v2 scalars, HParams sessions, Keras' layout, restarts, nesting, damage; and the sink's parent/child
runs, summary values, speed and bounded stream read back through tensorboard's own accumulator."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trackkit.backend import BackendSpec
from trackkit.backends.tensorboard import TensorBoardReader, TensorBoardSink
from trackkit.backends.tensorboard.stream import CHUNK
from trackkit.events import Metrics, RunFinished, RunStarted, Status, Summary

tbx = pytest.importorskip("tensorboardX")


def _reader(root: Path | str) -> TensorBoardReader:
    return TensorBoardReader(BackendSpec("tensorboard", str(root)))


def _close(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> bool:
    return len(a) == len(b) and all(s == t and math.isclose(x, y, rel_tol=1e-6) for (s, x), (t, y) in zip(a, b))


def _accumulator(d: str) -> Any:
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea

    acc = pea.EventAccumulator(d, size_guidance={pea.TENSORS: 0}, purge_orphaned_data=False)
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One logdir holding every layout, written by the tools themselves."""
    from torch.utils.tensorboard import SummaryWriter

    root = tmp_path_factory.mktemp("foreign") / "logs"
    # torch, plain: legacy simple_value and v2 tensor scalars, text, histogram, image
    w = SummaryWriter(str(root / "exp1" / "run_a"))
    for s in range(10):
        w.add_scalar("loss", 1.0 / (s + 1), s)
        w.add_scalar("acc", s / 10, s, new_style=True)
    w.add_text("notes", "hello *world*", 3)
    w.add_histogram("w", np.arange(100.0), 4)
    w.add_image("img", np.zeros((3, 4, 5), dtype=np.uint8), 5)
    # add_scalars: sibling subdirectories of the run
    for s in range(3):
        w.add_scalars("pair", {"train": s * 1.0, "val": s * 2.0}, s)
    # add_hparams: a timestamped session subdirectory of the run
    w.add_hparams({"lr": 0.1, "bs": 32, "opt": "adam", "wd": 1.5}, {"hparam/acc": 0.75})
    w.close()

    # Keras' callback layout: train/ and validation/ of one run, v2 scalars
    for part, base in (("train", 1.0), ("validation", 2.0)):
        w = SummaryWriter(str(root / "fit" / "20240101-120000" / part))
        for s in range(4):
            w.add_scalar("epoch_loss", base + s, s, new_style=True)
        w.close()

    # tensorboardX, nested three deep, with its own add_hparams session
    w2 = tbx.SummaryWriter(str(root / "deep" / "a" / "b" / "tbx"))
    for s in range(5):
        w2.add_scalar("x/y", s * 0.5, s)
    w2.add_hparams({"depth": 3, "act": "relu"}, {"best": 0.5})
    w2.close()

    # a restart: a second writer on the same directory goes back to step 5 and on to 14
    for steps in (range(10), range(5, 15)):
        w = SummaryWriter(str(root / "restart"))
        for s in steps:
            w.add_scalar("loss", float(s), s)
        w.close()
    return root


# ---------------------------------------------------------------- run boundaries and names


def test_run_boundaries_ids_and_names(logs: Path) -> None:
    infos = {i.run_id: i for i in _reader(logs).list_runs()}
    assert sorted(infos) == ["deep/a/b/tbx", "exp1/run_a", "fit/20240101-120000", "restart"]
    a = infos["exp1/run_a"]
    assert (a.project, a.name, a.group) == ("exp1", "run_a", None)
    assert a.location == str(logs / "exp1" / "run_a")
    deep = infos["deep/a/b/tbx"]
    assert (deep.project, deep.name, deep.group) == ("deep", "tbx", "a/b")
    restart = infos["restart"]
    assert (restart.project, restart.name) == ("logs", "restart")  # one component: the logdir's name as project
    assert _reader(logs).list_runs("deep")[0].run_id == "deep/a/b/tbx"
    # ids are stable: a second reader lists the same
    assert sorted(i.run_id for i in _reader(logs).list_runs()) == sorted(infos)


def test_torch_scalars_legacy_and_v2_media_and_parts(logs: Path) -> None:
    rec = _reader(logs).read_run("exp1/run_a")
    m = rec.metrics()
    assert _close(m["loss"], [(s, 1.0 / (s + 1)) for s in range(10)])  # simple_value
    assert _close(m["acc"], [(s, s / 10) for s in range(10)])  # v2 tensor scalar
    # add_scalars' subdirectories are parts of the run: their relative path in front of the tag
    assert m["pair_train/pair"] == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert m["pair_val/pair"] == [(0, 0.0), (1, 2.0), (2, 4.0)]
    assert set(m) == {"loss", "acc", "pair_train/pair", "pair_val/pair"}  # the session's metric is a summary
    media = rec.media()
    assert [x.kind for x in media["notes"]] == ["text"] and media["notes"][0].read_bytes() == b"hello *world*"
    assert media["w"][0].kind == "histogram" and media["img"][0].kind == "image"
    # the add_hparams session: config, summary values, its status
    assert rec.info.config == {"lr": 0.1, "bs": 32, "opt": "adam", "wd": 1.5}
    assert rec.info.summary == {"hparam/acc": 0.75}
    assert rec.info.status is Status.COMPLETED
    assert rec.info.notes == []
    start = rec.events[0]
    assert isinstance(start, RunStarted) and start.config == rec.info.config and start.start_time > 0


def test_keras_layout_is_one_run(logs: Path) -> None:
    rec = _reader(logs).read_run("fit/20240101-120000")
    m = rec.metrics()
    assert m == {"train/epoch_loss": [(s, 1.0 + s) for s in range(4)],
                 "validation/epoch_loss": [(s, 2.0 + s) for s in range(4)]}
    assert (rec.info.project, rec.info.name) == ("fit", "20240101-120000")
    # steps in order across the two parts' files
    steps = [e.step for e in rec.events if isinstance(e, Metrics)]
    assert steps == sorted(steps)


def test_tensorboardx_nested_with_hparams(logs: Path) -> None:
    rec = _reader(logs).read_run("deep/a/b/tbx")
    assert rec.metrics() == {"x/y": [(s, s * 0.5) for s in range(5)]}
    assert rec.info.config == {"depth": 3, "act": "relu"}
    assert rec.info.summary == {"best": 0.5}


def test_several_event_files_are_one_run_in_step_order(logs: Path) -> None:
    d = logs / "restart"
    assert len([f for f in os.listdir(d) if "tfevents" in f]) == 2
    rec = _reader(logs).read_run("restart")
    pts = rec.metrics()["loss"]
    assert len(pts) == 20  # every point of both files (no purge, no sampling)
    steps = [e.step for e in rec.events if isinstance(e, Metrics)]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 14
    assert sorted(pts) == sorted([(s, float(s)) for s in range(10)] + [(s, float(s)) for s in range(5, 15)])


def test_stream_equals_read_run_for_a_foreign_run(logs: Path) -> None:
    reader = _reader(logs)
    streamed = [e for chunk, _f, _n in reader.stream_run("exp1/run_a") for e in chunk]
    assert isinstance(streamed[0], RunStarted)
    assert len(streamed) == len(reader.read_run("exp1/run_a").events)
    with pytest.raises(KeyError, match="no tensorboard run"):
        reader.stream_run("nope")


# ---------------------------------------------------------------- bad input


def test_truncated_and_corrupt_event_files(logs: Path, tmp_path: Path) -> None:
    root = tmp_path / "logs"
    shutil.copytree(logs / "restart", root / "cut")
    files = sorted((root / "cut").iterdir())
    first = files[0]
    data = first.read_bytes()
    first.write_bytes(data[: len(data) - 7])  # the last record loses its tail
    rec = _reader(root).read_run("cut")
    pts = rec.metrics()["loss"]
    assert len(pts) == 19  # one point lost, the rest read
    (note,) = rec.info.notes
    assert str(first) in note and "is cut at byte" in note and "were read" in note
    assert _reader(root).list_runs()[0].notes == [note]
    (damage,) = rec.info.damage  # the same, one short line (runs and migrate show it)
    assert damage.startswith(f"{first} cut at byte ") and damage.endswith(f" of {len(data) - 7}")
    assert _reader(root).list_runs()[0].damage == [damage]
    chunks = list(_reader(root).stream_run("cut"))
    assert [n for _e, _f, ns in chunks for n in ns] == [note]

    # a flipped byte in the middle of a record: that record is skipped, the rest is read
    second = files[1]
    raw = bytearray(second.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    second.write_bytes(bytes(raw))
    rec = _reader(root).read_run("cut")
    assert 15 <= len(rec.metrics()["loss"]) < 19
    assert any(str(second) in n and ("checksum" in n) for n in rec.info.notes), rec.info.notes
    assert any(d.startswith(f"{second}: ") and "fail their checksum" in d for d in rec.info.damage), rec.info.damage


def test_empty_logdir_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    reader = _reader(tmp_path / "empty")
    assert reader.list_runs() == []
    msg = reader.why_empty()
    assert "no TensorBoard runs" in msg and str(tmp_path / "empty") in msg and "Fix:" in msg and "\n" not in msg
    with pytest.raises(KeyError) as exc:
        reader.read_run("x")
    assert "no event files" in str(exc.value)


# ---------------------------------------------------------------- the sink


def _emit(root: Path, events: list[Any]) -> None:
    sink = TensorBoardSink(BackendSpec("tensorboard", str(root)))
    try:
        sink.emit(events)
    finally:
        sink.close()


def test_parent_child_and_summary_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    _emit(root, [RunStarted(run_id="sweep1", project="p", name="sweep", start_time=10.0),
                 Metrics(step=0, time=11.0, values={"best": 0.5}),
                 Summary({"best": 0.9, "trial": "t2"}, 12.0),
                 RunFinished(status=Status.COMPLETED, time=13.0)])
    for i in range(2):
        _emit(root, [RunStarted(run_id=f"trial{i}", project="p", name=f"t{i}", start_time=20.0, parent="sweep1"),
                     Metrics(step=1, time=21.0, values={"loss": float(i)}),
                     RunFinished(status=Status.COMPLETED, time=22.0)])
    parent_dir = root / "p" / "sweep"
    assert (parent_dir / "t0" / ".trackkit_run_id").read_text() == "trial0"  # nested in its parent's directory
    assert (parent_dir / "t1" / ".trackkit_run_id").read_text() == "trial1"
    infos = {i.run_id: i for i in _reader(root).list_runs()}
    assert sorted(infos) == ["sweep1", "trial0", "trial1"]
    assert infos["trial0"].parent == "sweep1" and infos["sweep1"].parent is None
    parent = _reader(root).read_run("sweep1")
    assert parent.metrics() == {"best": [(0, 0.5)]}  # the children's points are theirs
    assert parent.info.summary == {"best": 0.9, "trial": "t2"}
    child = _reader(root).read_run("trial1")
    assert child.info.parent == "sweep1" and child.metrics() == {"loss": [(1, 1.0)]}
    assert isinstance(child.events[0], RunStarted) and child.events[0].parent == "sweep1"
    # a re-attached child (agent restart) goes on in the same directory
    _emit(root, [RunStarted(run_id="trial1", project="p", name="t1", start_time=20.0, parent="sweep1"),
                 Metrics(step=2, time=23.0, values={"loss": 5.0})])
    assert _reader(root).read_run("trial1").metrics() == {"loss": [(1, 1.0), (2, 5.0)]}
    # tensorboard's own reader sees the child as its own run with its points
    acc = _accumulator(str(parent_dir / "t1"))
    assert "loss" in acc.Tags()["tensors"]


def test_hand_encoded_scalars_read_by_tensorboard(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    vals = {"a": 0.1, "b/c d": -3.0, "big": 1e300, "nan": float("nan"), "inf": float("-inf"), "ünï": 2.5}
    _emit(root, [RunStarted(run_id="r", project="p", name="n", start_time=1.0),
                 Metrics(step=0, time=2.0, values=vals), Metrics(step=-5, time=3.0, values={"a": 1.0}),
                 Metrics(step=3_000_000_000, time=4.0, values={"a": 2.0})])
    from tensorboard.util import tensor_util

    acc = _accumulator(str(root / "p" / "n"))
    got = {t: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(t)]
           for t in vals}
    assert got["a"] == [(0, pytest.approx(0.1)), (-5, 1.0), (3_000_000_000, 2.0)]
    assert got["b/c d"] == [(0, -3.0)] and got["ünï"] == [(0, 2.5)]
    assert got["big"] == [(0, math.inf)] and got["inf"] == [(0, -math.inf)] and math.isnan(got["nan"][0][1])


def test_stream_chunks_are_bounded_and_equal_read_run(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    n = 100_000
    sink = TensorBoardSink(BackendSpec("tensorboard", str(root)))
    sink.emit([RunStarted(run_id="big", project="p", name="big", start_time=1.0)])
    for i in range(0, n, 1000):
        sink.emit([Metrics(step=s, time=2.0 + s, values={"loss": s * 0.5}) for s in range(i, i + 1000)])
    sink.emit([RunFinished(status=Status.COMPLETED, time=9.0e5)])
    sink.close()
    reader = _reader(root)
    sizes, fractions, streamed = [], [], []
    for events, frac, notes in reader.stream_run("big"):
        assert len(events) <= CHUNK and notes == []
        sizes.append(len(events))
        fractions.append(frac)
        streamed.extend(events)
    assert len(sizes) >= n // CHUNK and fractions == sorted(fractions) and fractions[-1] == 1.0
    rec = reader.read_run("big")
    assert streamed == rec.events
    assert [s for s, _ in rec.metrics()["loss"]] == list(range(n))
    info = reader.list_runs()[0]
    assert info.last_step == n - 1 and info.last_metrics == {"loss": (n - 1) * 0.5}
    assert info.status is Status.COMPLETED


def test_reading_a_scalar_logdir_imports_no_tensorflow_stub(tmp_path: Path) -> None:
    """Reading scalars needs tensorboard's protos only: not its writer, not the TensorFlow stub (gfile,
    fsspec, absl, the summary plugins: 3 MB at a migrate's peak), which a sink or a tensor value loads."""
    import subprocess
    import sys

    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path / "logs" / "run1"))
    for s in range(50):
        w.add_scalar("loss", 1.0 / (s + 1), s)
    w.close()
    code = (
        "import sys\n"
        "from trackkit.registry import load_reader, parse_backend\n"
        f"r = load_reader(parse_backend('tensorboard:{tmp_path / 'logs'}'))\n"
        "(info,) = r.list_runs()\n"
        "rec = r.read_run(info.run_id)\n"
        "assert len(rec.metrics()['loss']) == 50, rec.metrics()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('tensorboard.compat.tensorflow_stub',"
        " 'tensorboard.summary', 'fsspec'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
