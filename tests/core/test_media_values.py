"""The trainer side of media on the in-memory backend: every good input ends as canonical Media
with the right meta and payload; every bad one is skipped with ONE warning naming the key and the
fix, never raises, and the call's scalars are still recorded; payloads.bin and the journal record."""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
import warnings
import wave
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import trackkit
from trackkit import TrackkitWarning
from trackkit.backends import memory
from trackkit.events import Media, RunRecord
from trackkit.journal import read_journal

PIL = pytest.importorskip("PIL.Image")


class Logged:
    def __init__(self, rec: RunRecord, run: trackkit.Run, caught: list[warnings.WarningMessage]) -> None:
        self.rec, self.run = rec, run
        self.warnings = [str(w.message) for w in caught if issubclass(w.category, TrackkitWarning)]

    def one(self, key: str) -> Media:
        items = self.rec.media().get(key, [])
        assert len(items) == 1, (key, items)
        ev = items[0]
        assert ev.canonical, ev
        return ev

    def warned(self, key: str) -> list[str]:
        return [m for m in self.warnings if repr(key) in m]


@pytest.fixture
def log(tmp_path: Any) -> Iterator[Callable[..., Logged]]:
    names: list[str] = []

    def go(*calls: dict[str, Any]) -> Logged:
        name = f"mv-{uuid.uuid4().hex[:8]}"
        names.append(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = trackkit.init(project="media", backend=f"memory:{name}", root=str(tmp_path / "j"), capture=False)
            for step, values in enumerate(calls):
                run.log(values, step=step)  # never raises
            run.finish()
        return Logged(memory.store(name)[run.id], run, caught)

    yield go
    for name in names:
        memory.clear(name)


def png_pixels(ev: Media) -> Any:
    assert ev.format == "png" and ev.path.endswith(".png")
    with open(ev.path, "rb") as fh:
        data = fh.read()
    assert hashlib.sha256(data).hexdigest() == ev.sha256 and len(data) == ev.size
    return np.asarray(PIL.open(io.BytesIO(data)))


def _torch() -> Any:
    return pytest.importorskip("torch")


RNG = np.random.default_rng(0)
HWC = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)


# ---------------------------------------------------------------- images


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: HWC, HWC),
        (lambda: np.ascontiguousarray(HWC.transpose(2, 0, 1)), HWC),  # CHW
        (lambda: HWC[:, :, 0], HWC[:, :, 0]),  # HW
        (lambda: HWC[:, :, :1], HWC[:, :, 0]),  # HW1
        (lambda: HWC.astype(np.float32) / 255.0, HWC),  # float 0-1
        (lambda: _torch().from_numpy(HWC.transpose(2, 0, 1).copy()), HWC),  # a CHW tensor
        (lambda: _torch().from_numpy(HWC).float() / 255.0, HWC),  # a float HWC tensor
        (lambda: PIL.fromarray(HWC), HWC),
        (lambda: PIL.fromarray(HWC).convert("P"), np.asarray(PIL.fromarray(HWC).convert("P").convert("RGB"))),
    ],
    ids=["hwc", "chw", "hw", "hw1", "float01", "torch-chw", "torch-float", "pil", "pil-palette"],
)
def test_image_arrays_become_png(log: Callable[..., Logged], make: Callable[[], Any], expected: Any) -> None:
    value = make()  # a float 0-1 image is scaled to 0-255 and rounded: the same pixels again
    got = log({"img": trackkit.Image(value, caption="a cat"), "loss": 0.5})
    ev = got.one("img")
    assert ev.kind == "image" and ev.caption == "a cat" and ev.step == 0
    h, w = expected.shape[:2]
    channels = 1 if expected.ndim == 2 else expected.shape[2]
    assert ev.meta["width"] == w and ev.meta["height"] == h and ev.meta["channels"] == channels
    assert "dtype" not in ev.meta and "shape" not in ev.meta
    assert np.array_equal(png_pixels(ev), expected)
    assert got.rec.metrics() == {"loss": [(0, 0.5)]}
    assert got.warnings == []


def test_uint8_pixels_are_exact(log: Callable[..., Logged]) -> None:
    got = log({"img": trackkit.Image(HWC)}, {"img": trackkit.Image(HWC.transpose(2, 0, 1), layout="CHW")})
    items = got.rec.media("image")["img"]
    assert [e.step for e in items] == [0, 1]
    for ev in items:
        assert np.array_equal(png_pixels(ev), HWC)


@pytest.mark.parametrize("fmt, ext", [("PNG", "png"), ("JPEG", "jpg")])
def test_image_files_are_kept_as_they_are(log: Callable[..., Logged], tmp_path: Any, fmt: str, ext: str) -> None:
    path = tmp_path / f"pic.{ext}"
    PIL.fromarray(HWC).save(path, format=fmt)
    data = path.read_bytes()
    got = log({"img": trackkit.Image(str(path)), "loss": 1.0})
    ev = got.one("img")
    assert ev.format == ("png" if fmt == "PNG" else "jpeg")
    assert ev.sha256 == hashlib.sha256(data).hexdigest() and ev.size == len(data)
    with open(ev.path, "rb") as fh:
        assert fh.read() == data
    assert (ev.meta["width"], ev.meta["height"], ev.meta["channels"]) == (10, 12, 3)
    if fmt == "PNG":
        assert np.array_equal(png_pixels(ev), HWC)
    assert got.rec.metrics() == {"loss": [(0, 1.0)]}


def test_large_image_is_reduced_with_one_warning(log: Callable[..., Logged]) -> None:
    big = np.zeros((2100, 1500, 3), np.uint8)
    big[::3] = 255
    got = log({"big": trackkit.Image(big)}, {"big": trackkit.Image(big)})
    items = got.rec.media("image")["big"]
    assert len(items) == 2
    for ev in items:
        assert max(ev.meta["width"], ev.meta["height"]) <= 1024
        assert (ev.meta["width"], ev.meta["height"]) == (500, 700)  # every third pixel
    said = got.warned("big")
    assert len(said) == 1 and "media_max_image_px=1024" in said[0] and "Fix:" in said[0]


def test_media_max_image_px_0_keeps_it_whole(log: Callable[..., Logged], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKKIT_MEDIA_MAX_IMAGE_PX", "0")
    big = RNG.integers(0, 256, (1100, 1030, 3), dtype=np.uint8)
    got = log({"big": trackkit.Image(big)})
    ev = got.one("big")
    assert (ev.meta["width"], ev.meta["height"]) == (1030, 1100)
    assert np.array_equal(png_pixels(ev), big)
    assert got.warned("big") == []


# ---------------------------------------------------------------- histograms, text, tables


def test_histogram_from_values(log: Callable[..., Logged]) -> None:
    values = RNG.standard_normal(1000)
    got = log({"h": trackkit.Histogram(values, bins=20), "loss": 2.0})
    ev = got.one("h")
    assert ev.kind == "histogram" and ev.format == "json"
    data = json.loads(open(ev.path, "rb").read())
    assert len(data["counts"]) == 20 and len(data["edges"]) == 21 and sum(data["counts"]) == 1000
    assert data["min"] == pytest.approx(values.min()) and data["max"] == pytest.approx(values.max())
    assert data["edges"][0] == pytest.approx(values.min()) and data["edges"][-1] == pytest.approx(values.max())
    assert data["sum"] == pytest.approx(values.sum())
    expected, _ = np.histogram(values, bins=20, range=(values.min(), values.max()))
    assert data["counts"] == expected.tolist()
    assert got.rec.metrics() == {"loss": [(0, 2.0)]}


def test_histogram_of_a_torch_tensor_counts_nonfinite(log: Callable[..., Logged]) -> None:
    torch = pytest.importorskip("torch")
    t = torch.tensor([0.0, 1.0, 2.0, float("nan"), float("inf")])
    data = json.loads(open(log({"h": trackkit.Histogram(t, bins=4)}).one("h").path, "rb").read())
    assert sum(data["counts"]) == 3 and data["nonfinite"] == 2


def test_histogram_from_counts_and_edges(log: Callable[..., Logged]) -> None:
    got = log({"h": trackkit.Histogram(counts=[1, 0, 5], edges=[0.0, 0.5, 1.0, 2.0])})
    data = json.loads(open(got.one("h").path, "rb").read())
    assert data["counts"] == [1, 0, 5] and data["edges"] == [0.0, 0.5, 1.0, 2.0] and data["num"] == 6


def test_text(log: Callable[..., Logged]) -> None:
    ev = log({"notes": trackkit.Text("# héllo\n*world*")}).one("notes")
    assert ev.kind == "text" and ev.format == "txt"
    assert open(ev.path, encoding="utf-8").read() == "# héllo\n*world*"


def test_table_from_rows(log: Callable[..., Logged]) -> None:
    rows = [["a", 1, 0.5, True, None], ["b", np.int64(2), np.float32(1.5), False, "x"]]
    ev = log({"t": trackkit.Table(columns=["name", "n", "f", "ok", "note"], rows=rows)}).one("t")
    assert ev.kind == "table" and ev.format == "json"
    data = json.loads(open(ev.path, "rb").read())
    assert data == {"columns": ["name", "n", "f", "ok", "note"],
                    "rows": [["a", 1, 0.5, True, None], ["b", 2, 1.5, False, "x"]]}


def test_table_from_a_dataframe(log: Callable[..., Logged]) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"epoch": [1, 2], "acc": [0.5, 0.75], "tag": ["a", "b"]})
    for table in (trackkit.Table(df), trackkit.Table(dataframe=df)):
        data = json.loads(open(log({"t": table}).one("t").path, "rb").read())
        assert data == {"columns": ["epoch", "acc", "tag"], "rows": [[1, 0.5, "a"], [2, 0.75, "b"]]}


# ---------------------------------------------------------------- figures and audio


def test_figure_is_rendered_to_png(log: Callable[..., Logged]) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([0, 1, 2], [2, 0, 1])
    got = log({"fig": trackkit.Figure(fig, caption="curve"), "loss": 3.0})
    assert not plt.fignum_exists(fig.number)  # closed once recorded, as add_figure does
    ev = got.one("fig")
    assert ev.kind == "image" and ev.meta["figure"] is True and ev.caption == "curve"
    pix = png_pixels(ev)
    assert (ev.meta["width"], ev.meta["height"]) == (100, 75) and pix.shape[:2] == (75, 100)
    assert len(np.unique(pix.reshape(-1, pix.shape[-1]), axis=0)) > 2  # something was drawn
    assert got.rec.metrics() == {"loss": [(0, 3.0)]}


def _wav(ev: Media) -> tuple[int, int, Any]:
    with wave.open(ev.path, "rb") as w:
        return w.getframerate(), w.getnchannels(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def test_audio_mono_and_stereo(log: Callable[..., Logged]) -> None:
    mono = np.sin(np.linspace(0, 20, 800)).astype(np.float32) * 0.5
    stereo = RNG.integers(-3000, 3000, (400, 2)).astype(np.int16)
    got = log({"mono": trackkit.Audio(mono, sample_rate=8000), "stereo": trackkit.Audio(stereo, sample_rate=16000)})
    ev = got.one("mono")
    assert ev.kind == "audio" and ev.format == "wav" and ev.meta["sample_rate"] == 8000
    sr, ch, samples = _wav(ev)
    assert (sr, ch) == (8000, 1) and np.array_equal(samples, np.rint(mono * 32767).astype("<i2"))
    sr, ch, samples = _wav(got.one("stereo"))
    assert (sr, ch) == (16000, 2) and np.array_equal(samples.reshape(-1, 2), stereo)


def test_audio_from_a_wav_file(log: Callable[..., Logged], tmp_path: Any) -> None:
    path = tmp_path / "clip.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(np.arange(100, dtype="<i2").tobytes())
    ev = log({"clip": trackkit.Audio(str(path))}).one("clip")
    assert ev.format == "wav" and open(ev.path, "rb").read() == path.read_bytes()
    assert ev.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- bad inputs


def _not_a_figure() -> Any:
    return trackkit.Figure(object())


BAD: dict[str, tuple[Callable[[], Any], str]] = {
    "5-channels": (lambda: trackkit.Image(np.zeros((8, 8, 5), np.uint8)), "shape (8, 8, 5) is not an image"),
    "batch": (lambda: trackkit.Image(np.zeros((2, 3, 8, 8), np.uint8)), "a batch?"),
    "nan-image": (lambda: trackkit.Image(np.full((4, 4), np.nan, np.float32)), "NaN or inf"),
    "inf-image": (lambda: trackkit.Image(np.array([[0.0, np.inf]])), "NaN or inf"),
    "str-image": (lambda: trackkit.Image(np.array([["a"]])), "not an image dtype"),
    "empty-hist": (lambda: trackkit.Histogram(np.array([])), "empty"),
    "no-values": (lambda: trackkit.Histogram(), "no values"),
    "edges": (lambda: trackkit.Histogram(counts=[1, 2, 3], edges=[0, 1, 2]), "3 counts need 4 edges, got 3"),
    "ragged": (lambda: trackkit.Table(columns=["a", "b"], rows=[[1, 2], [3]]), "ragged"),
    "repeated": (lambda: trackkit.Table(columns=["a", "a"], rows=[[1, 2]]), "column names repeat"),
    "not-figure": (_not_a_figure, "is not a matplotlib figure"),
    "sample-rate": (lambda: trackkit.Audio(np.zeros(100, np.float32), sample_rate=0), "sample_rate=0"),
    "no-rate": (lambda: trackkit.Audio(np.zeros(100, np.float32)), "sample_rate=None"),
    "missing-png": (lambda: trackkit.Image("/nonexistent/pic.png"), "cannot read '/nonexistent/pic.png'"),
    "missing-wav": (lambda: trackkit.Audio("/nonexistent/clip.wav"), "cannot read '/nonexistent/clip.wav'"),
    "not-text": (lambda: trackkit.Text(3), "is not a string"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_skipped_with_one_warning(log: Callable[..., Logged], case: str) -> None:
    make, cause = BAD[case]
    key = f"bad/{case}"
    got = log({key: make(), "loss": 0.25, "ok": trackkit.Text("fine")}, {key: make(), "loss": 0.5})
    said = got.warned(key)
    assert len(said) == 1, got.warnings  # once, not once per call
    assert cause in said[0] and "Fix:" in said[0] and "skipped" in said[0]
    assert key not in got.rec.media()
    assert got.rec.metrics() == {"loss": [(0, 0.25), (1, 0.5)]}  # the call's scalars are recorded
    assert [e.step for e in got.rec.media()["ok"]] == [0]  # and its other media
    assert got.run.problems["media"] == 2


def test_a_non_image_file_is_skipped(log: Callable[..., Logged], tmp_path: Any) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a picture")
    got = log({"img": trackkit.Image(str(path)), "loss": 1.0})
    said = got.warned("img")
    assert len(said) == 1 and "is not a PNG, JPEG or GIF file" in said[0] and "Fix:" in said[0]
    assert got.rec.metrics() == {"loss": [(0, 1.0)]}


# ---------------------------------------------------------------- payloads.bin and the journal record


def test_payloads_bin_holds_the_raw_payload(log: Callable[..., Logged]) -> None:
    hist = RNG.standard_normal(300).astype(np.float32)
    got = log({"img": trackkit.Image(HWC)}, {"h": trackkit.Histogram(hist)})
    journal = os.path.join(got.run.dir, "journal.jsonl")
    records = {r["key"]: r for r in read_journal(journal) if r.get("k") == "media"}
    payloads = os.path.join(got.run.dir, "payloads.bin")
    blob = open(payloads, "rb").read()
    for key, raw, shape in (("img", HWC.tobytes(), [12, 10, 3]), ("h", hist.tobytes(), [300])):
        r = records[key]
        assert r["path"] == payloads and r["format"] == "raw" and r["offset"] >= 0
        assert r["size"] == len(raw) and blob[r["offset"]:r["offset"] + r["size"]] == raw
        assert r["sha256"] == hashlib.sha256(raw).hexdigest()
        assert r["meta"]["shape"] == shape
    assert records["img"]["meta"]["dtype"] == "|u1" and records["h"]["meta"]["dtype"] == "<f4"
    assert records["h"]["offset"] == records["img"]["offset"] + records["img"]["size"]
    # the delivered form is the canonical one, made by the agent
    assert got.one("img").meta == {"width": 10, "height": 12, "channels": 3}
