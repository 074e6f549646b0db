"""Media in TensorBoard (docs/backends/tensorboard.md#media): written through trackkit with the real
process agent and read back with tensorboard's own EventAccumulator and trackkit's reader; a logdir
torch's SummaryWriter wrote itself read by trackkit's reader; a batch sent twice is written once."""

from __future__ import annotations

import io
import json
import os
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

import trackkit
from trackkit.backend import BackendSpec
from trackkit.backends.tensorboard import MEDIA_CAPABILITIES, TensorBoardReader, TensorBoardSink
from trackkit.events import Event, Media, Metrics, RunFinished, RunRecord, RunStarted, Status, StatusChange

RNG = np.random.default_rng(11)
IMAGES = [RNG.integers(0, 256, (12, 20, 3), dtype=np.uint8) for _ in range(5)]
VALUES = [RNG.normal(s, 1.0, 400) for s in range(5)]
ROWS = [[1, "cat", True, 0.25], [2, "dog", False, None], [3, "a|b *x*", True, float("inf")]]
TONE = np.sin(np.linspace(0, 200 * np.pi, 4000)) * 0.5


def _accumulator(run_dir: str) -> Any:
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea

    acc = pea.EventAccumulator(run_dir, size_guidance={pea.TENSORS: 0}, purge_orphaned_data=False)
    acc.Reload()
    return acc


def _arrays(acc: Any, tag: str) -> list[tuple[int, Any]]:
    from tensorboard.util import tensor_util

    return [(te.step, tensor_util.make_ndarray(te.tensor_proto)) for te in acc.Tensors(tag)]


def _plugin(acc: Any, tag: str) -> str:
    return str(acc.SummaryMetadata(tag).plugin_data.plugin_name)


def _pixels(data: bytes) -> Any:
    with PILImage.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def _want_counts(s: int) -> list[int]:
    counts, _ = np.histogram(VALUES[s], bins=16, range=(VALUES[s].min(), VALUES[s].max()))
    return [int(c) for c in counts]


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """One run through trackkit (process agent): (logdir, run id)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tmp = tmp_path_factory.mktemp("tbmedia")
    logdir = str(tmp / "runs")
    run = trackkit.init(project="media", name="m", backend=f"tensorboard:{logdir}", root=str(tmp / "j"),
                        capture=False, agent="process", drain_timeout=60.0)
    with pytest.warns(trackkit.TrackkitWarning, match="no native table type"):
        for s in range(5):
            run.log({"loss": 1.0 / (s + 1), "samples": trackkit.Image(IMAGES[s], caption=f"step {s}"),
                     "weights": trackkit.Histogram(VALUES[s], bins=16),
                     "notes": trackkit.Text(f"note {s}: lr *warmup*")}, step=s)
        fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
        ax.plot([0, 1, 2], [2, 0, 1])
        run.log({"errors": trackkit.Table(columns=["id", "pred", "ok", "p"], rows=ROWS, caption="misses"),
                 "curve": trackkit.Figure(fig, caption="a curve"),
                 "tone": trackkit.Audio(TONE, 8000, caption="440")}, step=4)
    run.finish()
    assert not run.pending(), f"not delivered (see {run.dir}/agent.log)"
    return logdir, run.id


def _run_dir(logdir: str) -> str:
    return os.path.join(logdir, "media", "m")


def test_tensorboard_itself_reads_what_trackkit_wrote(logged: tuple[str, str]) -> None:
    acc = _accumulator(_run_dir(logged[0]))
    for tag, plugin in (("samples", "images"), ("weights", "histograms"), ("notes", "text"), ("errors", "text"),
                        ("curve", "images"), ("tone", "audio")):
        assert _plugin(acc, tag) == plugin, tag
    images = _arrays(acc, "samples")
    assert [s for s, _ in images] == [0, 1, 2, 3, 4]
    for s, arr in images:
        w, h, png = arr.tolist()
        assert (int(w), int(h)) == (20, 12)
        assert (_pixels(png) == IMAGES[s]).all(), f"image at step {s}: pixels differ"
    assert acc.SummaryMetadata("samples").summary_description == "step 0"  # the card's description
    hists = _arrays(acc, "weights")
    assert [s for s, _ in hists] == [0, 1, 2, 3, 4]
    for s, arr in hists:
        assert arr.shape == (16, 3)
        assert [int(c) for c in arr[:, 2]] == _want_counts(s), f"histogram at step {s}"
        assert arr[0, 0] == pytest.approx(VALUES[s].min(), rel=1e-6)
        assert arr[-1, 1] == pytest.approx(VALUES[s].max(), rel=1e-6)
    texts = _arrays(acc, "notes")
    assert [(s, a.item().decode()) for s, a in texts] == [(s, f"note {s}: lr *warmup*") for s in range(5)]
    ((step, table),) = _arrays(acc, "errors")
    assert step == 4 and table.shape == (4, 4)  # the header row, then a row per table row
    assert [c.decode() for c in table[0]] == ["id", "pred", "ok", "p"]
    assert [c.decode() for c in table[3]] == ["3", "a|b *x*", "true", "Infinity"]
    ((_, fig),) = _arrays(acc, "curve")
    assert (int(fig[0]), int(fig[1])) == (100, 75) and _pixels(fig[2]).shape == (75, 100, 3)
    ((_, tone),) = _arrays(acc, "tone")
    with wave.open(io.BytesIO(tone.reshape(-1)[0])) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (8000, 1, 4000)
    assert set(acc.Tags()["tensors"]) == {"loss", "samples", "weights", "notes", "errors", "curve", "tone",
                                          "trackkit/run", "trackkit/config", "trackkit/tags", "trackkit/status",
                                          "trackkit/media", "_hparams_/session_end_info"}


def test_trackkits_reader_returns_canonical_media(logged: tuple[str, str]) -> None:
    logdir, run_id = logged
    rec = TensorBoardReader(BackendSpec("tensorboard", logdir)).read_run(run_id)
    assert set(rec.metrics()) == {"loss"}, f"media came back as metrics: {sorted(rec.metrics())}"
    assert rec.info.media == {"image": 6, "histogram": 5, "text": 5, "table": 1, "audio": 1}
    media = rec.media()
    for s, m in enumerate(media["samples"]):
        assert (m.step, m.kind, m.format, m.caption) == (s, "image", "png", f"step {s}")
        assert (m.meta["width"], m.meta["height"], m.meta["channels"]) == (20, 12, 3)
        assert (_pixels(m.read_bytes()) == IMAGES[s]).all()
        assert m.canonical and m.size == os.path.getsize(m.path)
    for s, m in enumerate(media["weights"]):
        h = json.loads(m.read_bytes())
        _, edges = np.histogram(VALUES[s], bins=16, range=(VALUES[s].min(), VALUES[s].max()))
        assert h["counts"] == _want_counts(s) and h["edges"] == edges.tolist()  # exact: float64 edges kept
        assert h["num"] == 400 and h["sum"] == pytest.approx(VALUES[s].sum())
        assert h["min"] == VALUES[s].min() and h["sum_squares"] == pytest.approx(float(VALUES[s] @ VALUES[s]))
    assert [m.read_bytes().decode() for m in media["notes"]] == [f"note {s}: lr *warmup*" for s in range(5)]
    (table,) = media["errors"]
    t = json.loads(table.read_bytes())
    assert (table.kind, table.caption, t["columns"]) == ("table", "misses", ["id", "pred", "ok", "p"])
    assert t["rows"] == ROWS  # typed cells: int, str, bool, float, None, inf
    (curve,) = media["curve"]
    assert curve.kind == "image" and curve.meta.get("figure") is True and curve.caption == "a curve"
    (tone,) = media["tone"]
    assert (tone.kind, tone.format, tone.caption, tone.meta["sample_rate"]) == ("audio", "wav", "440", 8000)
    with wave.open(io.BytesIO(tone.read_bytes())) as w:
        got = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert np.array_equal(got, np.rint(TONE * 32767).astype("<i2"))


def test_a_summary_writer_logdir_reads_as_media(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.image import metadata as image_metadata
    from tensorboard.util import tensor_util
    from torch.utils.tensorboard import SummaryWriter

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (3, 8, 10), dtype=np.uint8)
    batch = rng.integers(0, 256, (4, 3, 8, 10), dtype=np.uint8)
    values = rng.normal(size=300)
    w = SummaryWriter(str(tmp_path / "logs" / "torchrun"))
    w.add_scalar("loss", 0.5, 0)
    w.add_image("img", img, 1)
    w.add_images("imgs", batch, 2)  # torch tiles a batch into one grid image
    fig, ax = plt.subplots(figsize=(2, 2), dpi=40)
    ax.plot([1, 2, 3])
    w.add_figure("fig", fig, 3)
    w.add_histogram("h", values, 4)
    w.add_text("t", "hello *md*", 5)
    w.add_audio("a", torch.tensor(np.sin(np.linspace(0, 100, 800)) * 0.5), 6, sample_rate=8000)
    # several images in one summary (the image plugin's [width, height, png, png, ...] tensor)
    pngs = [_png(batch[i].transpose(1, 2, 0)) for i in range(3)]
    md = image_metadata.create_summary_metadata(display_name=None, description=None)
    value = summary_pb2.Summary.Value(tag="many", metadata=md,
                                      tensor=tensor_util.make_tensor_proto([b"10", b"8", *pngs]))
    w._get_file_writer().add_summary(summary_pb2.Summary(value=[value]), 7)
    w.close()

    reader = TensorBoardReader(BackendSpec("tensorboard", str(tmp_path / "logs")))
    (info,) = reader.list_runs()
    assert info.run_id == "torchrun" and info.media == {"image": 6, "histogram": 1, "text": 1, "audio": 1}
    rec = reader.read_run("torchrun")
    assert rec.metrics() == {"loss": [(0, 0.5)]}
    media = rec.media()
    assert sorted(media) == ["a", "fig", "h", "img", "imgs", "many", "t"]
    (m,) = media["img"]
    assert (m.kind, m.step, m.format) == ("image", 1, "png")
    assert (_pixels(m.read_bytes()) == img.transpose(1, 2, 0)).all()
    (grid,) = media["imgs"]
    assert grid.kind == "image" and grid.meta["width"] > 10  # the grid torch made
    many = media["many"]
    assert [x.meta["index"] for x in many] == [0, 1, 2] and all(x.step == 7 for x in many)
    for i, x in enumerate(many):
        assert (_pixels(x.read_bytes()) == batch[i].transpose(1, 2, 0)).all()
    (f,) = media["fig"]
    assert f.kind == "image" and (f.meta["width"], f.meta["height"]) == (80, 80)
    (h,) = media["h"]
    hist = json.loads(h.read_bytes())
    assert h.kind == "histogram" and sum(hist["counts"]) == 300 and len(hist["edges"]) == len(hist["counts"]) + 1
    assert hist["edges"][0] == pytest.approx(values.min(), rel=1e-6)
    assert hist["edges"][-1] == pytest.approx(values.max(), rel=1e-6)
    (t,) = media["t"]  # torch's tag is "t/text_summary"
    assert (t.kind, t.step, t.read_bytes()) == ("text", 5, b"hello *md*")
    (a,) = media["a"]
    assert (a.kind, a.format, a.meta["sample_rate"], a.meta["frames"]) == ("audio", "wav", 8000, 800)
    for ms in media.values():
        for x in ms:
            assert x.canonical and os.path.exists(x.path)


def _png(arr: Any) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _media_files(d: Path) -> list[Media]:
    """One canonical Media event per kind, as the agent hands them to a sink."""
    import hashlib

    def make(key: str, kind: str, fmt: str, data: bytes, **meta: Any) -> Media:
        p = d / f"{key}.{fmt}"
        p.write_bytes(data)
        return Media(key=key, step=3, kind=kind, path=str(p), sha256=hashlib.sha256(data).hexdigest(),
                     size=len(data), format=fmt, time=1000.0, caption=f"{key} caption", meta=meta)

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x01" * 160)
    hist = {"counts": [0, 2, 3, 0], "edges": [0.0, 0.1, 0.3, 0.35, 1.0], "num": 5}
    return [
        make("img", "image", "png", _png(IMAGES[0]), width=20, height=12, channels=3),
        make("hist", "histogram", "json", json.dumps(hist).encode()),
        make("txt", "text", "txt", "ünïcode *md*".encode()),
        make("tab", "table", "json", json.dumps({"columns": ["a", "b"], "rows": [[1, None], [2.5, "x"]]}).encode()),
        make("wav", "audio", "wav", buf.getvalue(), sample_rate=16000),
    ]


def _read(logdir: Path) -> RunRecord:
    return TensorBoardReader(BackendSpec("tensorboard", str(logdir))).read_run("retry-run")


def test_a_retried_batch_is_not_doubled(tmp_path: Path) -> None:
    """The agent sends a batch again after a failure (here: an artifact whose file was not there
    yet): what the first try wrote is not written again, in the event files themselves."""
    from trackkit.events import Artifact

    logdir = tmp_path / "runs"
    media = _media_files(tmp_path)
    art_path = tmp_path / "model.bin"
    art = Artifact(path=str(art_path), name="model", kind="model", sha256="0" * 64, size=1, time=1001.0)
    start = RunStarted(run_id="retry-run", project="p", name="r", start_time=999.0)
    batch: list[Event] = [start, Metrics(3, 1000.0, {"loss": 0.5}), *media,
                          StatusChange(Status.RUNNING, "working", time=1000.5), art]
    sink = TensorBoardSink(BackendSpec("tensorboard", str(logdir)))
    assert sink.capabilities.media == MEDIA_CAPABILITIES and set(MEDIA_CAPABILITIES) == {"table"}
    with pytest.raises(trackkit.BackendError, match="Artifact"):
        sink.emit(batch)  # fails at the artifact: everything before it is written
    art_path.write_bytes(b"w")
    sink.emit(batch)  # the agent's retry of the whole batch
    sink.emit(batch)  # and once more after a success (the cursor was not saved)
    sink.emit([RunFinished(Status.COMPLETED, 1002.0)])
    sink.close()

    acc = _accumulator(str(logdir / "p" / "r"))
    for tag in ("loss", "img", "hist", "txt", "tab", "wav", "trackkit/artifact"):
        assert len(acc.Tensors(tag)) == 1, tag
    assert len(acc.Tensors("trackkit/media")) == 5
    assert len(acc.Tensors("trackkit/status")) == 2  # working, completed
    rec = _read(logdir)
    assert rec.metrics() == {"loss": [(3, 0.5)]}
    assert rec.info.media == {"image": 1, "histogram": 1, "text": 1, "table": 1, "audio": 1}
    assert len([e for e in rec.events if isinstance(e, Artifact)]) == 1
    got = {m.key: m for m in rec.events if isinstance(m, Media)}
    for m in media:
        g = got[m.key]
        assert (g.kind, g.step, g.time, g.caption) == (m.kind, m.step, m.time, m.caption), m.key
        if m.kind != "histogram":
            assert g.sha256 == m.sha256, f"{m.key}: not the same bytes"  # image, text, table, audio byte for byte
    hist = json.loads(got["hist"].read_bytes())
    assert hist == {"counts": [0, 2, 3, 0], "edges": [0.0, 0.1, 0.3, 0.35, 1.0], "num": 5}  # empty end buckets kept
    assert got["wav"].meta["sample_rate"] == 16000 and got["img"].meta == {"width": 20, "height": 12, "channels": 3}


def test_a_media_file_that_cannot_be_read_does_not_stop_delivery(tmp_path: Path) -> None:
    logdir = tmp_path / "runs"
    bad = Media(key="gone", step=0, kind="image", path=str(tmp_path / "nope.png"), sha256="0" * 64, size=3,
                format="png", time=1000.0)
    sink = TensorBoardSink(BackendSpec("tensorboard", str(logdir)))
    sink.emit([RunStarted(run_id="retry-run", project="p", name="r", start_time=999.0), bad,
               Metrics(0, 1000.0, {"loss": 1.0})])
    sink.close()
    acc = _accumulator(str(logdir / "p" / "r"))
    ((_, rec),) = _arrays(acc, "trackkit/media")
    assert "gone" in json.loads(rec.item())["error"] and "nope.png" in json.loads(rec.item())["error"]
    assert _read(logdir).metrics() == {"loss": [(0, 1.0)]} and not _read(logdir).media()
