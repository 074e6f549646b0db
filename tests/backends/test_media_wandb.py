"""Media in the W&B adapter (docs/backends/wandb.md#media) against the real wandb SDK, offline, no mocks.

Written through trackkit (``init`` + the real process agent) and read back from W&B's own storage
(the ``run-<id>.wandb`` history records and the run's ``files/`` directory) and through trackkit's
reader; a run made by calling ``wandb.init``/``wandb.log`` directly is read by trackkit's reader with
every kind mapped and no media turned into metrics; a batch sent twice doubles nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import time
import wave
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("wandb")
np = pytest.importorskip("numpy")
PILImage = pytest.importorskip("PIL.Image")

import trackkit  # noqa: E402
from trackkit.backend import BackendSpec  # noqa: E402
from trackkit.backends import wandb as tkw  # noqa: E402
from trackkit.backends.wandb.decode import row_of  # noqa: E402
from trackkit.backends.wandb.media import html_text  # noqa: E402
from trackkit.events import Event, Media, Metrics, RunFinished, RunRecord, RunStarted, Status  # noqa: E402

RNG = np.random.default_rng(7)
IMAGES = [RNG.integers(0, 256, (12, 20, 3), dtype=np.uint8) for _ in range(5)]
VALUES = [RNG.normal(s, 1.0, 400) for s in range(5)]
TEXTS = [f"note {s}: a < b & c > d\n\ttabbed \"quoted\" 'single' </pre> ünï ✓" for s in range(5)]
ROWS = [[1, "cat", True, 0.25], [2, "dog", False, None], [3, "a|b *x*", True, float("inf")]]
TONE = np.sin(np.linspace(0, 200 * np.pi, 4000)) * 0.5


def _pixels(path: str) -> Any:
    with PILImage.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _want_counts(s: int) -> list[int]:
    counts, _ = np.histogram(VALUES[s], bins=16, range=(VALUES[s].min(), VALUES[s].max()))
    return [int(c) for c in counts]


def _want_pcm() -> bytes:
    return bytes(np.clip(np.rint(TONE * 32767.0), -32768, 32767).astype("<i2").tobytes())


def _run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("wandb/*run-*/run-*.wandb"))


def _history(run_dir: Path) -> list[dict[str, Any]]:
    """Every history record of W&B's own run file, as nested rows."""
    rows = []
    for f in sorted(run_dir.glob("run-*.wandb")):
        for rec in tkw.iter_run_file(str(f)):
            if rec.WhichOneof("record_type") == "history":
                rows.append(row_of(rec.history.item))
    return rows


def _typed(rows: list[dict[str, Any]], key: str) -> list[tuple[int, dict[str, Any]]]:
    return [(int(r["_step"]), r[key]) for r in rows if isinstance(r.get(key), dict) and "_type" in r[key]]


# ---------------------------------------------------------------- one run through trackkit, shared


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One run through trackkit with the process agent: (W&B dir, trackkit run id)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tmp = tmp_path_factory.mktemp("wbmedia")
    root = tmp / "wb"
    run = trackkit.init(project="media", name="m", backend=f"wandb:media?mode=offline&dir={root}",
                        root=str(tmp / "j"), capture=False, agent="process", drain_timeout=60.0)
    with pytest.warns(trackkit.TrackkitWarning, match="no native text type"):
        for s in range(5):
            run.log({"loss": 1.0 / (s + 1), "samples": trackkit.Image(IMAGES[s], caption=f"step {s}"),
                     "weights": trackkit.Histogram(VALUES[s], bins=16),
                     "notes": trackkit.Text(TEXTS[s], caption=f"c{s}")}, step=s)
        fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
        ax.plot([0, 1, 2], [2, 0, 1])
        run.log({"errors": trackkit.Table(columns=["id", "pred", "ok", "p"], rows=ROWS, caption="misses"),
                 "curve": trackkit.Figure(fig, caption="a curve"),
                 "tone": trackkit.Audio(TONE, 8000, caption="440")}, step=4)
    run.finish()
    return root, run.id


@pytest.fixture(scope="module")
def read_back(logged: tuple[Path, str]) -> RunRecord:
    root, run_id = logged
    return tkw.WandbReader(BackendSpec("wandb", "media", {"mode": "offline", "dir": str(root)})).read_run(run_id)


def test_wandb_stores_every_kind_natively_in_the_row_of_its_step(logged: tuple[Path, str]) -> None:
    """Read with W&B's own storage only: the .wandb history records and the run's files/."""
    root, _ = logged
    (run_dir,) = _run_dirs(root)
    files = run_dir / "files"
    rows = _history(run_dir)
    images, hists, texts = _typed(rows, "samples"), _typed(rows, "weights"), _typed(rows, "notes")
    assert [s for s, _ in images] == [s for s, _ in hists] == [s for s, _ in texts] == [0, 1, 2, 3, 4]
    for s, v in images:
        assert v["_type"] == "image-file" and v["caption"] == f"step {s}"
        assert (v["width"], v["height"]) == (20, 12)
        assert np.array_equal(_pixels(str(files / v["path"])), IMAGES[s])
    for s, v in hists:
        assert v["_type"] == "histogram" and v["values"] == _want_counts(s) and len(v["bins"]) == 17
    for s, v in texts:
        assert v["_type"] == "html-file"
        assert html_text((files / v["path"]).read_text(encoding="utf-8")) == TEXTS[s]
    ((ts, table),) = _typed(rows, "errors")
    body = json.loads((files / table["path"]).read_text())
    assert (ts, table["_type"], body["columns"], body["data"]) == (4, "table-file", ["id", "pred", "ok", "p"], ROWS)
    ((_, curve),) = _typed(rows, "curve")
    assert curve["_type"] == "image-file" and curve["caption"] == "a curve"
    ((_, tone),) = _typed(rows, "tone")
    assert tone["_type"] == "audio-file" and tone["caption"] == "440"
    with wave.open(str(files / tone["path"])) as w:
        assert (w.getframerate(), w.readframes(w.getnframes())) == (8000, _want_pcm())
    # media land in the SAME W&B row as the metrics of their step (one history record per step)
    steps = [int(r["_step"]) for r in rows]
    assert steps == sorted(set(steps)) == [0, 1, 2, 3, 4]
    for r in rows:
        assert isinstance(r.get("loss"), (int, float)) and "samples" in r and "weights" in r


def test_reader_returns_canonical_media_and_no_media_metrics(read_back: RunRecord) -> None:
    rec = read_back
    assert set(rec.metrics()) == {"loss"}  # not samples.width, weights.values, notes.size ...
    assert rec.info.media == {"image": 6, "histogram": 5, "text": 5, "table": 1, "audio": 1}
    images = rec.media("image")
    assert [m.step for m in images["samples"]] == [0, 1, 2, 3, 4]
    for s, m in enumerate(images["samples"]):
        assert m.canonical and m.format == "png" and m.caption == f"step {s}"
        assert m.meta == {"width": 20, "height": 12, "channels": 3}
        data = Path(m.path).read_bytes()
        assert m.sha256 == hashlib.sha256(data).hexdigest() and m.size == len(data)
        assert np.array_equal(_pixels(m.path), IMAGES[s])
    (curve,) = images["curve"]
    assert curve.meta["figure"] is True and curve.caption == "a curve" and curve.meta["width"] == 100
    hists = rec.media("histogram")["weights"]
    for s, m in enumerate(hists):
        body = json.loads(m.read_bytes())
        assert m.format == "json" and body["counts"] == _want_counts(s) and len(body["edges"]) == 17
        assert body["num"] == 400 and body["min"] == pytest.approx(VALUES[s].min())  # kept by trackkit/media
        assert body["edges"][0] == body["min"] and body["edges"][-1] == body["max"]
        assert m.meta == {"bins": 16}
    notes = rec.media("text")["notes"]
    assert [(m.read_bytes().decode(), m.caption, m.format) for m in notes] == [
        (TEXTS[s], f"c{s}", "txt") for s in range(5)]
    (table,) = rec.media("table")["errors"]
    body = json.loads(table.read_bytes())
    assert body == {"columns": ["id", "pred", "ok", "p"], "rows": ROWS} and table.caption == "misses"
    assert math.isinf(body["rows"][2][3]) and table.meta == {"columns": 4, "rows": 3}
    (tone,) = rec.media("audio")["tone"]
    assert tone.format == "wav" and tone.meta == {"sample_rate": 8000} and tone.caption == "440"
    with wave.open(io.BytesIO(tone.read_bytes())) as w:
        assert w.readframes(w.getnframes()) == _want_pcm()
    for m in (ev for ev in rec.events if isinstance(ev, Media)):
        assert m.sha256 == hashlib.sha256(m.read_bytes()).hexdigest()


def test_reader_matches_what_the_agent_delivered(logged: tuple[Path, str], read_back: RunRecord) -> None:
    """The files W&B copied (image, audio) are byte for byte the agent's canonical files; the text,
    table and histogram files the reader rebuilds hash the same as the agent's."""
    root, run_id = logged
    media_dir = next((root.parent / "j").glob(f"*/{run_id}/media"))
    canonical = {p.relative_to(media_dir).parts[0]: set() for p in media_dir.rglob("*") if p.is_file()}
    for p in media_dir.rglob("*"):
        if p.is_file():
            canonical[p.relative_to(media_dir).parts[0]].add(hashlib.sha256(p.read_bytes()).hexdigest())
    for key, items in read_back.media().items():
        assert {m.sha256 for m in items} <= canonical[key], key


# ---------------------------------------------------------------- a run W&B wrote itself


@pytest.fixture(scope="module")
def wandb_written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import wandb

    root = tmp_path_factory.mktemp("wbnative")
    wav = root / "clip.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(_want_pcm())
    run = wandb.init(project="native", id="wbnative1", dir=str(root), reinit="create_new",
                     settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
    for s in range(3):
        run.log({
            "acc": 0.5 + s / 10,
            "img": wandb.Image(IMAGES[s], caption=f"direct {s}"),
            "hist": wandb.Histogram(np_histogram=np.histogram(VALUES[s], bins=8)),
            "seq": wandb.Histogram(VALUES[s].tolist(), num_bins=4),
            "tbl": wandb.Table(columns=["a", "b"], data=[[s, "x"], [s + 1, None]]),
            "page": wandb.Html(f"<h1>page {s}</h1>"),
            "gallery": [wandb.Image(IMAGES[0], caption="first"), wandb.Image(IMAGES[1], caption="second")],
            "clip": wandb.Audio(str(wav), sample_rate=16000, caption="clip"),
            "cloud": wandb.Object3D(np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])),
        })
    path = str(run.settings.sync_file)
    run.finish()
    deadline = time.monotonic() + 30
    while not tkw.has_exit_record(path) and time.monotonic() < deadline:  # finish() can return before the file is
        time.sleep(0.05)
    return root


def test_a_run_wandb_wrote_reads_as_media(wandb_written: Path, caplog: pytest.LogCaptureFixture) -> None:
    reader = tkw.WandbReader(BackendSpec("wandb", "native", {"mode": "offline", "dir": str(wandb_written)}))
    with caplog.at_level(logging.WARNING, logger="trackkit.wandb"):
        rec = reader.read_run("wbnative1")
    assert set(rec.metrics()) == {"acc"}  # no img.width, hist.values, tbl.nrows, cloud.size ...
    media = rec.media()
    assert {k: [m.step for m in v] for k, v in media.items()} == {
        "img": [0, 1, 2], "hist": [0, 1, 2], "seq": [0, 1, 2], "tbl": [0, 1, 2], "page": [0, 1, 2],
        "gallery": [0, 0, 1, 1, 2, 2], "clip": [0, 1, 2]}
    assert rec.info.media == {"image": 9, "histogram": 6, "table": 3, "text": 3, "audio": 3}
    for s, m in enumerate(media["img"]):
        assert (m.kind, m.format, m.caption, m.meta) == ("image", "png", f"direct {s}",
                                                         {"width": 20, "height": 12, "channels": 3})
        assert np.array_equal(_pixels(m.path), IMAGES[s])
    g0, g1 = media["gallery"][:2]
    assert (g0.meta["index"], g1.meta["index"], g0.caption, g1.caption) == (0, 1, "first", "second")
    assert np.array_equal(_pixels(g1.path), IMAGES[1])
    for s, m in enumerate(media["hist"]):
        counts, edges = np.histogram(VALUES[s], bins=8)
        body = json.loads(m.read_bytes())
        assert body["counts"] == counts.tolist() and body["edges"] == pytest.approx(edges.tolist(), rel=1e-15)
    assert json.loads(media["tbl"][2].read_bytes()) == {"columns": ["a", "b"], "rows": [[2, "x"], [3, None]]}
    page = media["page"][1]
    assert page.kind == "text" and page.meta == {"html": True} and "<h1>page 1</h1>" in page.read_bytes().decode()
    clip = media["clip"][0]
    assert (clip.format, clip.meta, clip.caption) == ("wav", {"sample_rate": 16000}, "clip")
    assert clip.read_bytes() == (wandb_written / "clip.wav").read_bytes()
    skipped = reader.skipped["wbnative1"]
    assert [(i.key, i.step, i.wandb_type) for i in skipped] == [("cloud", s, "object3D-file") for s in range(3)]
    assert "no trackkit media kind" in skipped[0].note
    assert any("object3D-file" in r.getMessage() and "not metrics" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- the sink: retries, late media


def _canonical(tmp: Path, key: str, step: int, kind: str, data: bytes, fmt: str, **kw: Any) -> Media:
    path = tmp / f"{key}-{step}.{fmt}"
    path.write_bytes(data)
    return Media(key=key, step=step, kind=kind, path=str(path), sha256=hashlib.sha256(data).hexdigest(),
                 size=len(data), format=fmt, time=1_700_000_000.0 + step, **kw)


def _png(arr: Any) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _hist(counts: list[int]) -> bytes:
    edges = [float(i) for i in range(len(counts) + 1)]
    return json.dumps({"counts": counts, "edges": edges, "num": sum(counts)}).encode()


def test_a_retried_batch_and_a_restarted_sink_double_nothing(tmp_path: Path) -> None:
    root = tmp_path / "wb"
    spec = BackendSpec("wandb", "retry", {"mode": "offline", "dir": str(root)})
    t0 = 1_700_000_000.0
    img = _canonical(tmp_path, "img", 0, "image", _png(IMAGES[0]), "png", caption="c",
                     meta={"width": 20, "height": 12, "channels": 3})
    hist = _canonical(tmp_path, "h", 0, "histogram", _hist([1, 2, 3]), "json")
    text = _canonical(tmp_path, "t", 1, "text", b"hello", "txt")
    batch: list[Event] = [RunStarted(run_id="retry-1", project="retry", name="r", start_time=t0),
                          img, hist, Metrics(step=0, time=t0, values={"loss": 1.0}),
                          text, Metrics(step=1, time=t0 + 1, values={"loss": 0.5})]
    sink = tkw.WandbSink(spec)
    sink.emit(batch)
    # the agent re-sends a batch after a failure: media are skipped by the sink; the metric points go to
    # the late column (the sink cannot tell them from late ones) and the reader drops the exact duplicates
    with pytest.warns(RuntimeWarning, match="trackkit/late"):
        sink.emit(batch)
    sink.close()  # the agent stops; a fresh sink re-attaches to the same W&B run and gets it again
    sink2 = tkw.WandbSink(spec)
    with pytest.warns(RuntimeWarning, match="trackkit/late"):
        sink2.emit([*batch, RunFinished(status=Status.COMPLETED, time=t0 + 2)])
    sink2.close()
    rows = [r for d in _run_dirs(root) for r in _history(d)]
    assert len(_typed(rows, "img")) == len(_typed(rows, "h")) == len(_typed(rows, "t")) == 1
    assert not any("trackkit/media" in r and "files" in json.loads(r["trackkit/media"]) for r in rows)
    rec = tkw.WandbReader(spec).read_run("retry-1")
    assert {k: [m.step for m in v] for k, v in rec.media().items()} == {"img": [0], "h": [0], "t": [1]}
    assert rec.metrics() == {"loss": [(0, 1.0), (1, 0.5)]}
    assert rec.info.status is Status.COMPLETED


def test_media_below_the_current_step_is_kept_and_read_back_at_its_step(tmp_path: Path) -> None:
    """W&B drops a log at a lower step silently and keeps one value per key and step: trackkit keeps
    such media as run files (warned once) and reads them back at their own step."""
    root = tmp_path / "wb"
    spec = BackendSpec("wandb", "late", {"mode": "offline", "dir": str(root)})
    t0 = 1_700_000_000.0
    first = _canonical(tmp_path, "h", 5, "histogram", _hist([1, 1]), "json")
    again = _canonical(tmp_path, "h2", 5, "histogram", _hist([9, 9]), "json")  # same key and step, below
    again = Media(**{**again.__dict__, "key": "h"})
    late_img = _canonical(tmp_path, "img", 2, "image", _png(IMAGES[2]), "png", caption="late",
                          meta={"width": 20, "height": 12, "channels": 3})
    big_body = {"columns": ["i"], "rows": [[i] for i in range(10_001)]}  # wandb.Table would truncate it
    big = _canonical(tmp_path, "big", 6, "table", json.dumps(big_body).encode(), "json")
    sink = tkw.WandbSink(spec)
    with pytest.warns(RuntimeWarning, match="kept as the run file trackkit-media/") as caught:
        sink.emit([RunStarted(run_id="late-1", project="late", name="l", start_time=t0),
                   Metrics(step=5, time=t0, values={"loss": 1.0}), first, again, late_img, big,
                   RunFinished(status=Status.COMPLETED, time=t0 + 1)])
    messages = [str(w.message) for w in caught]
    assert any("Fix:" in m and "'img' at step 2" in m and "already holds step 5" in m for m in messages)
    assert any("'big' at step 6" in m and "truncates" in m and "Fix:" in m for m in messages)
    sink.close()
    rec = tkw.WandbReader(spec).read_run("late-1")
    got = {k: [(m.step, m.read_bytes()) for m in v] for k, v in rec.media().items()}
    assert got["h"] == [(5, _hist([1, 1])), (5, _hist([9, 9]))]
    ((step, data),) = got["img"]
    assert step == 2 and data == _png(IMAGES[2]) and rec.media()["img"][0].caption == "late"
    ((_, big_read),) = got["big"]
    assert json.loads(big_read) == big_body
    assert set(rec.metrics()) == {"loss"}


def test_capabilities_name_the_one_kind_without_a_native_type() -> None:
    caps = tkw.WandbSink.capabilities
    assert set(caps.media) == {"text"} and "wandb.Html" in caps.media["text"]


def test_odd_media_values_are_skipped_never_metrics_and_packed_bins_read() -> None:
    """What a W&B server or an older SDK may hand the shared Decoder (online rows are nested dicts)."""
    from trackkit.backends.wandb.decode import Decoder

    d = Decoder({}, "odd", "p")
    d.history({"_step": 3, "_timestamp": 1.0, "acc": 0.5,
               "nested": {"a": 1, "img": {"_type": "image-file", "path": "media/images/gone.png", "width": 4}},
               "bad": {"_type": "histogram", "values": "x", "bins": [0, 1]},
               "tbl": {"_type": "table-file", "path": "media/table/t.json", "nrows": 2},
               "vid": {"_type": "video-file", "path": "media/videos/v.mp4", "size": 9},
               "packed": {"_type": "histogram", "values": [1, 2],
                          "packedBins": {"min": -1.0, "size": 0.5, "count": 2}}})
    got = d.result(location="", backend="wandb")
    assert {k: v for e in got.events if isinstance(e, Metrics) for k, v in e.values.items()} == {"acc": 0.5,
                                                                                                "nested.a": 1.0}
    ((packed,),) = [v for k, v in RunRecord(info=got.info, events=got.events).media().items() if k == "packed"]
    assert json.loads(packed.read_bytes()) == {"counts": [1, 2], "edges": [-1.0, -0.5, 0.0]} and packed.step == 3
    assert sorted((s.key, s.wandb_type) for s in got.skipped) == [
        ("bad", "histogram"), ("nested.img", "image-file"), ("tbl", "table-file"), ("vid", "video-file")]
    assert all(s.step == 3 and s.note for s in got.skipped)
