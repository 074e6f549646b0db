"""Media migrate in all six directions between the real backends (TensorBoard files, W&B offline
files, MLflow sqlite) and verify by what they show: 5 images, 5 histograms and 5 texts over 5 steps
(plus a table and an audio clip) are 5, 5 and 5 in every target, read back through its own Reader
(issue 10). And media the tools wrote themselves (SummaryWriter.add_image, wandb.Image,
mlflow.log_image) arrive as media in another tool, never as made-up metrics."""

from __future__ import annotations

import io
import itertools
import os
import warnings
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

import trackkit
from trackkit.migrate import migrate
from trackkit.registry import load_reader, parse_backend

pytest.importorskip("mlflow")
pytest.importorskip("wandb")

KINDS = {"samples": "image", "weights": "histogram", "notes": "text"}


def _backends(tmp: str) -> dict[str, str]:
    return {"tensorboard": f"tensorboard:{tmp}/tb", "wandb": f"wandb:media?dir={tmp}/wb",
            "mlflow": f"mlflow:{tmp}/ml.db"}


def _log_source(backend: str, tmp: str, images: list[Any]) -> str:
    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = trackkit.init(project="media", backend=backend, root=f"{tmp}/.trackkit", capture=False,
                            drain_timeout=120)
        for s in range(5):
            run.log({"loss": 1.0 / (s + 1), "samples": trackkit.Image(images[s], caption=f"s{s}"),
                     "weights": trackkit.Histogram(rng.normal(size=300), bins=12),
                     "notes": trackkit.Text(f"step {s}")}, step=s)
        run.log({"errors": trackkit.Table(columns=["id", "ok"], rows=[[1, True], [2, False]]),
                 "tone": trackkit.Audio(np.sin(np.linspace(0, 50, 800)) * 0.5, 8000)}, step=4)
        run.finish()
    assert not run.pending(), run.pending()
    return run.id


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str, str]]:
    """One source run per backend: name -> (backend string, run id, the temp dir of its targets)."""
    rng = np.random.default_rng(11)
    images = [rng.integers(0, 256, (10, 14, 3), dtype=np.uint8) for _ in range(5)]
    out = {}
    for name in ("tensorboard", "wandb", "mlflow"):
        tmp = str(tmp_path_factory.mktemp(f"src-{name}"))
        backend = _backends(tmp)[name]
        out[name] = (backend, _log_source(backend, tmp, images), tmp)
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("src", "dst"), list(itertools.permutations(["tensorboard", "wandb", "mlflow"], 2)))
def test_media_migrate_and_verify_in_every_direction(sources: dict[str, tuple[str, str, str]], src: str, dst: str,
                                                     tmp_path: Any) -> None:
    source, run_id, _ = sources[src]
    target = _backends(str(tmp_path))[dst]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = migrate(run_id, source, target)
    assert report.ok, report.summary()
    assert report.media == {"image": 5, "histogram": 5, "text": 5, "table": 1, "audio": 1}, report.media
    assert not report.skipped_media, report.skipped_media
    rec = load_reader(parse_backend(target)).read_run(run_id)
    media = rec.media()
    for key, kind in KINDS.items():
        assert [(m.kind, m.step) for m in media[key]] == [(kind, s) for s in range(5)], (dst, key, media.get(key))
    assert [m.caption for m in media["samples"]] == [f"s{s}" for s in range(5)]
    assert set(rec.metrics()) == {"loss"}, sorted(rec.metrics())


def test_verification_catches_a_changed_image(sources: dict[str, tuple[str, str, str]], tmp_path: Any) -> None:
    """A copy whose pixels differ is a mismatch, not 'verification OK' (the verifier decodes both)."""
    from trackkit.migrate import verify

    source, run_id, _ = sources["mlflow"]
    reader = load_reader(parse_backend(source))
    rec = reader.read_run(run_id)
    from dataclasses import replace

    from trackkit.events import Media, RunRecord

    first = rec.media("image")["samples"][0]
    other = os.path.join(str(tmp_path), "other.png")
    PILImage.new("RGB", (14, 10), (1, 2, 3)).save(other)
    changed = [replace(e, path=other) if e is first else e for e in rec.events]
    problems = verify(rec, RunRecord(rec.info, changed))
    assert [m.kind for m in problems] == ["media"] and "pixels" in str(problems[0]), problems
    assert isinstance(first, Media)


def _tool_written(tmp: str) -> dict[str, tuple[str, str]]:
    """Runs the tools wrote themselves, each with one image and one scalar."""
    img = np.zeros((6, 8, 3), dtype=np.uint8)
    img[:, :4] = 200
    out = {}
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(f"{tmp}/tbtool/run-a")
    for s in range(3):
        w.add_scalar("acc", s / 3, s)
        w.add_image("pic", img, s, dataformats="HWC")
    w.close()
    out["tensorboard"] = (f"tensorboard:{tmp}/tbtool", "")

    import wandb

    r = wandb.init(project="tool", dir=f"{tmp}/wbtool", mode="offline")
    for s in range(3):
        r.log({"acc": s / 3, "pic": wandb.Image(img)}, step=s)
    wid = r.id
    r.finish()
    out["wandb"] = (f"wandb:tool?dir={tmp}/wbtool", wid)

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mltool.db")
    mlflow.set_experiment("tool")  # the fluent API remembers an experiment id of another store otherwise
    with mlflow.start_run() as mr:
        for s in range(3):
            mlflow.log_metric("acc", s / 3, step=s)
            mlflow.log_image(img, key="pic", step=s)
        mid = mr.info.run_id
    mlflow.set_tracking_uri("")
    out["mlflow"] = (f"mlflow:{tmp}/mltool.db", mid)
    return out


@pytest.mark.slow
def test_media_the_tools_wrote_migrate_as_media(tmp_path: Any) -> None:
    tmp = str(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tools = _tool_written(tmp)
    for src, (source, run_id) in tools.items():
        if not run_id:
            (info,) = load_reader(parse_backend(source)).list_runs()
            run_id = info.run_id
        for dst in ("tensorboard", "wandb", "mlflow"):
            if dst == src:
                continue
            target = _backends(os.path.join(tmp, f"{src}-to-{dst}"))[dst]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = migrate(run_id, source, target)
            assert report.ok, report.summary()
            rec = load_reader(parse_backend(target)).read_run(report.run_id)
            assert not any(k.startswith("pic") for k in rec.metrics()), (src, dst, sorted(rec.metrics()))
            pics = rec.media("image")
            (key,) = [k for k in pics if "pic" in k]
            assert [m.step for m in pics[key]] == [0, 1, 2], (src, dst, pics[key])
            with PILImage.open(io.BytesIO(pics[key][0].read_bytes())) as im:
                px = np.asarray(im.convert("RGB"))
            assert px.shape == (6, 8, 3) and (px[:, :4] == 200).all() and (px[:, 4:] == 0).all(), (src, dst)


def _late_images_to_wandb(tmp: str, images: dict[int, Any]) -> tuple[Any, str]:
    """SummaryWriter writes scalars at steps 0-9, then ``images`` (step -> HWC array) as "pic"; the run
    is migrated to W&B. Returns the report and the target."""
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(f"{tmp}/tb/run-a")
    for s in range(10):
        w.add_scalar("loss", 1.0 / (s + 1), s)
    for step, img in images.items():
        w.add_image("pic", img, step, dataformats="HWC")
    w.close()
    source, target = f"tensorboard:{tmp}/tb", f"wandb:late?dir={tmp}/wb"
    (info,) = load_reader(parse_backend(source)).list_runs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = migrate(info.run_id, source, target)
    assert report.ok, report.summary()
    return report, target


def test_media_a_wandb_target_keeps_as_a_run_file_is_listed_in_the_report(tmp_path: Any) -> None:
    """SummaryWriter wrote the image after the scalars of later steps: W&B cannot put it in its
    media panel (it already holds a later step), so the sink keeps it as a run file; the copy is
    verified, and the report lists that value by key and step instead of staying silent."""
    img = np.zeros((6, 8, 3), dtype=np.uint8)
    img[:, :4] = 200
    report, target = _late_images_to_wandb(str(tmp_path), {2: img})
    kept = [n for n in report.notes if n.startswith(f"writing {report.target}: image ")]
    # the reader hands the image over after step 9's scalars (file order): kept as a run file, and said so
    (line,) = kept
    assert "pic@2:" in line and "W&B already holds step 9" in line and "kept as the run file" in line, line
    assert line in report.summary(), report.summary()
    rec = load_reader(parse_backend(target)).read_run(report.run_id)
    (pics,) = [v for k, v in rec.media("image").items() if "pic" in k]
    assert [m.step for m in pics] == [2]  # read back from the run file at its own step


def test_the_wandb_sinks_notes_are_bounded_and_count_the_rest(tmp_path: Any, monkeypatch: Any) -> None:
    """A live run's W&B sink lives as long as the run: its notes stop at ``_MAX_NOTES`` lines, the
    last of which counts the values past it."""
    import trackkit.backends.wandb.sink as wsink

    monkeypatch.setattr(wsink, "_MAX_NOTES", 2)
    images = {s: np.full((4, 4, 3), 40 * s, dtype=np.uint8) for s in (1, 2, 3, 4, 5)}
    report, _ = _late_images_to_wandb(str(tmp_path), images)
    lines = [n.split(": ", 1)[1] for n in report.notes if n.startswith(f"writing {report.target}: ")]
    assert len(lines) == 3 and lines[0].startswith("image pic@1:") and lines[1].startswith("image pic@2:"), lines
    assert lines[2] == "... and 3 more media value(s) kept as W&B run files", lines
