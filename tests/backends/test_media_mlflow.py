"""Media in the MLflow adapter against the real SDK: a sqlite store and a real ``mlflow server`` on 127.0.0.1.

Written through trackkit (``init`` + the real process agent) and read back from what MLflow itself
stored (``MlflowClient.list_artifacts`` / ``download_artifacts``: the ``log_image`` series, the
per-step JSON/text/WAV artifacts, the ``log_table`` JSON) and through trackkit's reader; runs made
by calling mlflow directly are read by trackkit's reader; a batch sent twice doubles nothing.
No mocks.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import uuid
import wave
from typing import Any

import pytest

pytest.importorskip("mlflow")

import numpy as np  # mlflow's own dependencies
from PIL import Image as PILImage

import trackkit
from trackkit.backend import BackendSpec
from trackkit.backends.mlflow import MlflowReader, MlflowSink
from trackkit.backends.mlflow.media import media_key
from trackkit.events import Event, Media, Metrics, RunStarted
from trackkit.registry import parse_backend

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def proxy_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real ``mlflow server`` that proxies artifacts (``mlflow-artifacts:``: every file over HTTP)."""
    from tk_mlflow_server import MlflowServer

    srv = MlflowServer(tmp_path_factory.mktemp("mlflow-media-proxy"), serve_artifacts=True)
    srv.start()
    try:
        yield srv.url
    finally:
        srv.stop()


@pytest.fixture(params=["sqlite", "server", "proxied"])
def where(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """(trackkit backend string, MLflow tracking URI) of one store."""
    if request.param == "sqlite":
        db = f"{tmp_path}/mlflow.db"
        yield f"mlflow:{db}", f"sqlite:///{db}"
        return
    url: str = request.getfixturevalue("mlflow_server" if request.param == "server" else "proxy_server")
    # this connection's own HTTP options, never the process environment's
    yield url.replace("http://", "mlflow://") + "?timeout=20&retries=0", url
    assert not any(k.startswith("MLFLOW_HTTP_REQUEST_") for k in os.environ), "trackkit wrote MLflow's HTTP settings"


def mlflow_client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def the_run(client: Any, project: str) -> Any:
    exp = client.get_experiment_by_name(project)
    (run,) = client.search_runs([exp.experiment_id])
    return run


def files(client: Any, mid: str, path: str) -> list[str]:
    return sorted(f.path for f in client.list_artifacts(mid, path) if not f.is_dir)


def fetch(client: Any, mid: str, path: str, tmp: Any) -> bytes:
    local = client.download_artifacts(mid, path, str(tmp))
    with open(local, "rb") as fh:
        return fh.read()


def rgb(data: bytes) -> Any:
    with PILImage.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


# ---------------------------------------------------------------- through trackkit


def test_media_through_trackkit(where: tuple[str, str], tmp_path: Any) -> None:
    backend, uri = where
    project = f"media-{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (10, 14, 3), dtype=np.uint8) for _ in range(5)]
    values = [rng.normal(s, 1.0, 300) for s in range(5)]
    rows = [[1, "cat", True, 0.25], [2, "dog", False, None]]
    tone = np.sin(np.linspace(0, 100 * np.pi, 2000)) * 0.5

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([0, 1, 2], [2, 0, 1])

    run = trackkit.init(project=project, backend=backend, root=str(tmp_path / ".trackkit"), capture=False,
                        agent="process", drain_timeout=90.0)
    for s in range(5):
        run.log({"loss": 1.0 / (s + 1), "samples": trackkit.Image(images[s], caption=f"step {s}"),
                 "weights": trackkit.Histogram(values[s], bins=8), "eval/notes": trackkit.Text(f"note {s} ü")}, step=s)
    run.log({"errors": trackkit.Table(columns=["id", "pred", "ok", "p"], rows=rows),
             "plot": trackkit.Figure(fig), "tone": trackkit.Audio(tone, 8000, caption="a tone")}, step=4)
    plt.close(fig)
    run.finish()
    assert not run.pending(), f"not delivered (see {run.dir}/agent.log)"

    # ---- what MLflow itself stored
    client = mlflow_client(uri)
    mr = the_run(client, project)
    mid = mr.info.run_id
    stored = files(client, mid, "images")
    series = [p for p in stored if p.startswith("images/samples+step+") and p.endswith(".png")]
    thumbs = [p for p in stored if p.startswith("images/samples+step+") and p.endswith("+compressed.webp")]
    assert len(series) == 5 and len(thumbs) == 5, stored
    assert mr.data.tags.get("mlflow.loggedImages") == "True"
    by_step = {int(p.split("+step+")[1].split("+")[0]): p for p in series}
    assert sorted(by_step) == [0, 1, 2, 3, 4]
    for s, p in by_step.items():
        assert (rgb(fetch(client, mid, p, tmp_path)) == images[s]).all(), f"pixels at step {s}"
    assert len([p for p in stored if p.startswith("images/plot+step+4+") and p.endswith(".png")]) == 1, stored

    hists = files(client, mid, "histograms/weights")
    assert len(hists) == 5, hists
    for p in hists:
        s = int(p.rsplit("/", 1)[1].split("_")[1].split("-")[0])
        h = json.loads(fetch(client, mid, p, tmp_path))
        want, _ = np.histogram(values[s], bins=8, range=(values[s].min(), values[s].max()))
        assert [int(c) for c in h["counts"]] == want.tolist() and len(h["edges"]) == 9

    texts = files(client, mid, "text/eval/notes")
    assert len(texts) == 5, texts
    for p in texts:
        s = int(p.rsplit("/", 1)[1].split("_")[1].split("-")[0])
        assert fetch(client, mid, p, tmp_path).decode() == f"note {s} ü"

    (table_file,) = files(client, mid, "tables/errors")
    assert table_file.startswith("tables/errors/step_4-")
    import pandas as pd

    df = pd.read_json(io.BytesIO(fetch(client, mid, table_file, tmp_path)), orient="split")
    assert list(df.columns) == ["id", "pred", "ok", "p"] and df["pred"].tolist() == ["cat", "dog"]
    assert df["id"].tolist() == [1, 2] and df["ok"].tolist() == [True, False] and df["p"][0] == 0.25
    assert {"path": table_file, "type": "table"} in json.loads(mr.data.tags["mlflow.loggedArtifacts"])

    (wav_file,) = files(client, mid, "audio/tone")
    with wave.open(io.BytesIO(fetch(client, mid, wav_file, tmp_path))) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (8000, 1, 2000)
    assert set(mr.data.metrics) == {"loss"}

    # ---- through trackkit's reader
    rec = MlflowReader(parse_backend(backend)).read_run(run.id)
    assert set(rec.metrics()) == {"loss"}
    media = rec.media()
    assert sorted(media) == ["errors", "eval/notes", "plot", "samples", "tone", "weights"], sorted(media)
    for key in ("samples", "weights", "eval/notes"):
        assert [m.step for m in media[key]] == [0, 1, 2, 3, 4], key
    for s, m in enumerate(media["samples"]):
        assert m.kind == "image" and m.format == "png" and m.caption == f"step {s}"
        assert m.meta["width"] == 14 and m.meta["height"] == 10 and m.meta["channels"] == 3
        assert (rgb(m.read_bytes()) == images[s]).all()
        assert m.sha256 == hashlib.sha256(m.read_bytes()).hexdigest() and m.size == os.path.getsize(m.path)
    for s, m in enumerate(media["weights"]):
        want, _ = np.histogram(values[s], bins=8, range=(values[s].min(), values[s].max()))
        assert [int(c) for c in json.loads(m.read_bytes())["counts"]] == want.tolist()
    assert [m.read_bytes().decode() for m in media["eval/notes"]] == [f"note {s} ü" for s in range(5)]
    (table,) = media["errors"]
    assert table.step == 4 and json.loads(table.read_bytes()) == {"columns": ["id", "pred", "ok", "p"], "rows": rows}
    (plot,) = media["plot"]
    assert plot.kind == "image" and plot.step == 4 and plot.meta.get("figure") is True
    (audio,) = media["tone"]
    assert audio.caption == "a tone" and audio.meta["sample_rate"] == 8000 and audio.format == "wav"
    assert rec.info.media == {"image": 6, "histogram": 5, "text": 5, "table": 1, "audio": 1}, rec.info.media


# ---------------------------------------------------------------- a run MLflow wrote itself


def test_mlflow_written_run(where: tuple[str, str], tmp_path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    backend, uri = where
    project = f"native-{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(5)
    imgs = [rng.integers(0, 256, (8, 6, 3), dtype=np.uint8) for _ in range(3)]
    static = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    fig, ax = plt.subplots(figsize=(2, 2), dpi=40)
    ax.bar([0, 1], [3, 4])
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment(project)
        with mlflow.start_run() as active:
            for s in range(3):
                mlflow.log_image(imgs[s], key="gen/sample", step=s * 10)
                mlflow.log_metric("loss", 1.0 / (s + 1), step=s * 10)
            mlflow.log_image(static, artifact_file="static/pic.png")
            mlflow.log_table({"q": ["a", "b"], "score": [0.5, 1.0], "n": [1, 2]}, artifact_file="eval.json")
            mlflow.log_figure(fig, "fig.png")
            mlflow.log_text("just a file", "notes.txt")
            mid = active.info.run_id
    finally:
        mlflow.set_tracking_uri(before)
        plt.close(fig)

    rec = MlflowReader(parse_backend(backend)).read_run(mid)
    assert set(rec.metrics()) == {"loss"}
    media = rec.media()
    assert sorted(media) == ["eval.json", "fig.png", "gen/sample", "static/pic.png"], sorted(media)
    series = media["gen/sample"]
    assert [m.step for m in series] == [0, 10, 20] and all(m.kind == "image" for m in series)
    for s, m in enumerate(series):
        assert (rgb(m.read_bytes()) == imgs[s]).all() and m.time > 0 and m.meta["width"] == 6
    (pic,) = media["static/pic.png"]
    assert pic.step == 0 and pic.meta["no_step"] is True and pic.meta["mlflow_artifact_file"] == "static/pic.png"
    assert (rgb(pic.read_bytes()) == static).all()
    (table,) = media["eval.json"]
    t = json.loads(table.read_bytes())
    assert table.kind == "table" and table.meta["no_step"] is True
    assert t == {"columns": ["q", "score", "n"], "rows": [["a", 0.5, 1], ["b", 1.0, 2]]}, t
    (figure,) = media["fig.png"]
    assert figure.kind == "image" and figure.format == "png" and figure.meta["width"] == 80
    assert rec.info.media == {"image": 5, "table": 1}, rec.info.media


# ---------------------------------------------------------------- a batch sent again


def _write(tmp: Any, name: str, data: bytes) -> str:
    path = os.path.join(str(tmp), name)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def _png(arr: Any) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _media(tmp: Any, key: str, step: int, kind: str, data: bytes, fmt: str, **kw: Any) -> Media:
    path = _write(tmp, f"{kind}-{step}-{hashlib.sha1(key.encode()).hexdigest()[:6]}.{fmt}", data)
    return Media(key=key, step=step, kind=kind, path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                 format=fmt, time=T0 + step, **kw)


def test_batch_sent_again_doubles_nothing(where: tuple[str, str], tmp_path: Any, caplog: Any) -> None:
    backend, uri = where
    spec: BackendSpec = parse_backend(backend)
    project = f"retry-{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(9)
    arrs = [rng.integers(0, 256, (4, 4, 3), dtype=np.uint8) for _ in range(3)]
    jpeg = io.BytesIO()
    PILImage.fromarray(arrs[0]).save(jpeg, format="JPEG", quality=95)
    odd_key = "val:acc/ü img"  # a colon and a non-ASCII letter: mapped in the paths, the original kept
    table = json.dumps({"columns": ["a"], "rows": [[1], [2]]}).encode()
    started = RunStarted(run_id=uuid.uuid4().hex[:12], project=project, name="r", start_time=T0)
    batch: list[Event] = [
        started,
        Metrics(step=0, time=T0, values={"loss": 1.0}),
        *[_media(tmp_path, "img", s, "image", _png(arrs[s]), "png", caption=f"c{s}",
                 meta={"width": 4, "height": 4, "channels": 3}) for s in range(3)],
        _media(tmp_path, odd_key, 0, "image", jpeg.getvalue(), "jpeg", meta={"width": 4, "height": 4}),
        _media(tmp_path, "t", 1, "table", table, "json", caption="tbl"),
        _media(tmp_path, "txt", 2, "text", b"hello", "txt"),
    ]
    gone = Media(key="gone", step=0, kind="image", path=str(tmp_path / "nope.png"), sha256="0" * 64, size=1,
                 format="png")
    sink = MlflowSink(spec)
    with caplog.at_level(logging.WARNING, logger="trackkit.backends.mlflow"):
        sink.emit([*batch, gone])  # a payload that is gone is said and skipped, never a stuck batch
    assert any("'gone'" in r.getMessage() and "Fix:" in r.getMessage() for r in caplog.records), caplog.text
    sink.emit(batch)  # the agent sends a batch again after a failure
    sink.close()
    again = MlflowSink(spec)  # a restarted agent: a fresh sink, the batch cut differently
    again.emit(batch[:4])
    again.emit([started, *batch[4:]])
    again.close()

    client = mlflow_client(uri)
    mr = the_run(client, project)
    stored = files(client, mr.info.run_id, "images")
    assert len([p for p in stored if p.endswith(".png")]) == 4, stored
    assert len([p for p in stored if p.endswith(".webp")]) == 4, stored
    assert any(p.startswith(f"images/{media_key(odd_key).replace('/', '~')}+step+0+") for p in stored), stored
    assert len(files(client, mr.info.run_id, "tables/t")) == 1 and len(files(client, mr.info.run_id, "text/txt")) == 1
    assert json.loads(mr.data.tags["mlflow.loggedArtifacts"]) == [
        {"path": files(client, mr.info.run_id, "tables/t")[0], "type": "table"}
    ]

    rec = MlflowReader(spec).read_run(started.run_id)
    media = rec.media()
    assert {k: len(v) for k, v in media.items()} == {"img": 3, odd_key: 1, "t": 1, "txt": 1}, media
    assert [m.caption for m in media["img"]] == ["c0", "c1", "c2"]
    for m, ev in zip(media["img"], batch[2:5]):
        assert isinstance(ev, Media) and m.sha256 == ev.sha256 and m.time == ev.time  # the delivered bytes
    (j,) = media[odd_key]
    assert j.format == "jpeg" and j.sha256 == hashlib.sha256(jpeg.getvalue()).hexdigest()  # the original kept
    (t,) = media["t"]
    assert t.caption == "tbl" and t.read_bytes() == table
    assert rec.info.media == {"image": 4, "table": 1, "text": 1}


def test_capabilities_say_what_mlflow_stores_instead() -> None:
    caps = MlflowSink.capabilities
    assert set(caps.media) == {"histogram", "audio"}
    assert "histograms/<key>/" in caps.media["histogram"] and "audio/<key>/" in caps.media["audio"]
    assert any("no native histogram type" in g for g in caps.gaps())
