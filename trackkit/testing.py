"""Testing helpers shipped with trackkit.

``capture()`` — for *your* tests: every ``trackkit.init`` inside the block logs to
an in-memory backend instead of the configured one, and you assert on what your
code logged::

    from trackkit.testing import capture

    def test_training_logs_loss():
        with capture() as cap:
            train(epochs=1)            # calls trackkit.init(...) / run.log(...)
        assert cap.run.info.status == "completed"
        assert cap.metrics("train/loss")[-1][1] < 1.0

``BackendContract`` — the one contract every backend adapter passes: subclass it
in a test module, implement ``backend_string``, and pytest runs every case
against your backend, reading back through the backend's own Reader.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .events import Artifact, Metrics, RunRecord, Status
from .util import close, same_value

__all__ = ["BackendContract", "Captured", "capture"]


@dataclass
class Captured:
    store_name: str
    #: the temporary journal root of the block's runs
    root: str = ""
    runs: list[RunRecord] = field(default_factory=list)
    closed: bool = False

    def _refresh(self) -> None:
        if self.closed:  # the block ended: keep the snapshot taken then
            return
        from .backends.memory import store

        self.runs = list(store(self.store_name).values())

    @property
    def run(self) -> RunRecord:
        """The last run started inside the block."""
        self._refresh()
        if not self.runs:
            raise AssertionError("no trackkit run was started inside capture()")
        return self.runs[-1]

    def metrics(self, key: str) -> list[tuple[int, float]]:
        """``[(step, value), ...]`` of ``key`` in the last run."""
        return self.run.metrics().get(key, [])


@contextlib.contextmanager
def capture(**overrides: Any) -> Iterator[Captured]:
    """Route every ``trackkit.init`` in the block to an in-memory backend.

    ``overrides`` are extra init settings forced on every run (e.g. ``on_nan="stop"``).
    Journals go to a temporary directory that is removed afterwards. ``finish()`` waits up to
    60 s for delivery here (not the default 10 s), so a test on a slow CI machine never reads a
    run the agent is still delivering; it returns as soon as everything is delivered."""
    from .backends.memory import clear
    from .run import current_run
    from .start import forced_settings

    name = f"capture-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="trackkit-capture-") as root:
        forced = {"backend": f"memory:{name}", "root": root, "capture": False, "drain_timeout": 60.0, **overrides}
        cap = Captured(name, root)
        try:
            with forced_settings(**forced):
                yield cap
        finally:
            active = current_run()
            if active is not None and active.settings.root == root:
                active.finish()
            cap._refresh()
            cap.closed = True
            clear(name)


# ---------------------------------------------------------------------- contract


#: the contract's "same value": within 1e-6 relative (TensorBoard stores float32); a whole float
#: equals the int it reads back as (``util.same_value``)
_REL, _ABS = 1e-6, 1e-12


class BackendContract:
    """Subclass in a test module and implement :meth:`backend_string`.

    Every case writes through ``trackkit.init``/``log``/``finish`` with the real
    delivery agent, then reads back through the backend's own Reader."""

    #: relative tolerance for metric values (TensorBoard stores float32)
    rel_tol: float = 1e-6
    #: agent mode the contract runs with
    agent: str = "process"

    def backend_string(self, tmp_path: str) -> str:
        raise NotImplementedError

    # -------------------------------------------------------------- helpers

    def record(
        self, tmp_path: Any, body: Callable[[Any], None], *, expect_exc: type[BaseException] | None = None,
        **init_kwargs: Any,
    ) -> RunRecord:
        import trackkit
        from trackkit.registry import load_reader, parse_backend

        backend = self.backend_string(str(tmp_path))
        kwargs: dict[str, Any] = {
            "project": "contract", "backend": backend, "root": os.path.join(str(tmp_path), ".trackkit"),
            "capture": False, "agent": self.agent, "drain_timeout": 60.0,
        }
        kwargs.update(init_kwargs)
        run = trackkit.init(**kwargs)
        try:
            body(run)
        except BaseException as exc:
            if expect_exc is None or not isinstance(exc, expect_exc):
                raise
            run.finish_from_exception(exc)
        run.finish()
        assert not run.pending(), f"not delivered: {run.pending()} (see {run.dir}/agent.log)"
        reader = load_reader(parse_backend(backend))
        return reader.read_run(run.id)  # type: ignore[no-any-return]

    def assert_points(self, rec: RunRecord, key: str, expected: list[tuple[int, float]]) -> None:
        got = sorted(rec.metrics().get(key, []))
        assert [s for s, _ in got] == [s for s, _ in expected], f"{key}: steps {got[:5]}... != {expected[:5]}..."
        for (s, v), (_, e) in zip(got, expected):
            assert close(v, e, rel=self.rel_tol, abs_tol=_ABS), f"{key} at step {s}: {v} != {e}"

    # -------------------------------------------------------------- cases

    def test_every_metric_point(self, tmp_path: Any) -> None:
        expected = [(i, 1.0 / (i + 1)) for i in range(200)]

        def body(run: Any) -> None:
            for i, v in expected:
                run.log({"train/loss": v, "train/acc": i / 200}, step=i)

        rec = self.record(tmp_path, body)
        self.assert_points(rec, "train/loss", expected)
        self.assert_points(rec, "train/acc", [(i, i / 200) for i in range(200)])
        assert rec.info.status is Status.COMPLETED

    def test_config_nested_and_tags(self, tmp_path: Any) -> None:
        cfg = {"model": "resnet18", "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
               "batch_size": 128, "seed": 42, "layers": [64, 128]}
        rec = self.record(tmp_path, lambda run: run.log({"x": 1.0}, step=0), config=cfg,
                          tags={"team": "vision", "baseline": ""})
        assert same_value(rec.info.config, cfg, rel=_REL, abs_tol=_ABS), rec.info.config
        assert rec.info.tags.get("team") == "vision", rec.info.tags
        assert "baseline" in rec.info.tags, rec.info.tags

    def test_artifact_with_aliases(self, tmp_path: Any) -> None:
        src = os.path.join(str(tmp_path), "model.pt")
        with open(src, "wb") as fh:
            fh.write(b"weights-v1")

        def body(run: Any) -> None:
            run.log_artifact(src, name="model", kind="model", aliases=["best"])
            with open(src, "wb") as fh:  # overwritten later: the recorded version must not change
                fh.write(b"weights-v2-longer")
            run.log_artifact(src, name="model", kind="model")

        rec = self.record(tmp_path, body)
        arts = [e for e in rec.events if isinstance(e, Artifact) and e.name == "model"]
        assert len(arts) == 2, arts
        import hashlib

        assert arts[0].sha256 == hashlib.sha256(b"weights-v1").hexdigest()
        assert arts[1].sha256 == hashlib.sha256(b"weights-v2-longer").hexdigest()
        assert "best" in arts[0].aliases

    def test_status_crashed(self, tmp_path: Any) -> None:
        def body(run: Any) -> None:
            run.log({"loss": 1.0}, step=0)
            raise RuntimeError("boom at step 0")

        rec = self.record(tmp_path, body, expect_exc=RuntimeError)
        assert rec.info.status is Status.CRASHED
        assert "boom" in rec.info.reason

    def test_status_killed(self, tmp_path: Any) -> None:
        rec = self.record(tmp_path, lambda run: run.finish("killed", "SIGTERM"))
        assert rec.info.status is Status.KILLED

    def test_status_diverged(self, tmp_path: Any) -> None:
        def body(run: Any) -> None:
            run.log({"loss": 1.0}, step=0)
            run.log({"loss": float("nan")}, step=1)
            run.log({"loss": 2.0}, step=2)

        rec = self.record(tmp_path, body)
        assert rec.info.status is Status.DIVERGED
        assert "step 1" in rec.info.reason
        pts = rec.metrics()["loss"]
        assert [s for s, _ in pts] == [0, 1, 2] and math.isnan(pts[1][1])

    def test_awkward_keys(self, tmp_path: Any) -> None:
        keys = ["train/loss@top-1", "with space", "k" * 300, "损失/训练", "a//b"]

        def body(run: Any) -> None:
            for i in range(3):
                run.log({k: float(i + n) for n, k in enumerate(keys)}, step=i)

        rec = self.record(tmp_path, body)
        for n, k in enumerate(keys):
            self.assert_points(rec, k, [(i, float(i + n)) for i in range(3)])

    def test_out_of_order_steps_kept(self, tmp_path: Any) -> None:
        def body(run: Any) -> None:
            run.log({"v": 5.0}, step=5)
            run.log({"v": 3.0}, step=3)
            run.log({"v": 6.0}, step=6)

        rec = self.record(tmp_path, body)
        self.assert_points(rec, "v", [(3, 3.0), (5, 5.0), (6, 6.0)])

    def test_metrics_event_type(self, tmp_path: Any) -> None:
        rec = self.record(tmp_path, lambda run: run.log({"a": 1.0, "b": 2.0}, step=7))
        ms = [e for e in rec.events if isinstance(e, Metrics)]
        assert any(e.step == 7 and close(e.values.get("a", math.nan), 1.0, rel=_REL, abs_tol=_ABS) for e in ms), ms

    # -------------------------------------------------------------- media (docs/media.md)

    def test_media_round_trip(self, tmp_path: Any) -> None:
        """5 images, 5 histograms and 5 texts over 5 steps, a table and an audio clip: every one
        read back through the backend's own Reader as media (never as made-up metrics), showing
        what was logged: the pixels, the counts, the text, the cells, the samples."""
        import io
        import wave

        import numpy as np
        from PIL import Image as PILImage

        import trackkit

        rng = np.random.default_rng(7)
        images = [rng.integers(0, 256, (12, 20, 3), dtype=np.uint8) for _ in range(5)]
        values = [rng.normal(s, 1.0, 500) for s in range(5)]
        rows = [[1, "cat", True, 0.25], [2, "dog", False, None]]
        tone = np.sin(np.linspace(0, 200 * np.pi, 4000)) * 0.5

        def body(run: Any) -> None:
            for s in range(5):
                run.log({"loss": 1.0 / (s + 1), "samples": trackkit.Image(images[s], caption=f"step {s}"),
                         "weights": trackkit.Histogram(values[s], bins=16),
                         "notes": trackkit.Text(f"note {s}: lr *warmup*")}, step=s)
            run.log({"errors": trackkit.Table(columns=["id", "pred", "ok", "p"], rows=rows),
                     "tone": trackkit.Audio(tone, 8000)}, step=4)

        rec = self.record(tmp_path, body)
        assert set(rec.metrics()) == {"loss"}, f"media came back as metrics: {sorted(rec.metrics())}"
        media = rec.media()
        for key in ("samples", "weights", "notes"):
            assert [m.step for m in media.get(key, [])] == [0, 1, 2, 3, 4], (key, media.get(key))
        for s, m in enumerate(media["samples"]):
            assert m.kind == "image" and m.caption == f"step {s}", m
            with PILImage.open(m.path) as img:
                got = np.asarray(img.convert("RGB"))
            assert got.shape == images[s].shape and (got == images[s]).all(), f"image at step {s}: pixels differ"
        for s, m in enumerate(media["weights"]):
            h = json.loads(m.read_bytes())
            want, _ = np.histogram(values[s], bins=16, range=(values[s].min(), values[s].max()))
            assert [int(c) for c in h["counts"]] == want.tolist(), f"histogram at step {s}"
            assert len(h["edges"]) == 17 and close(h["edges"][0], values[s].min(), rel=1e-6, abs_tol=_ABS)
        for s, m in enumerate(media["notes"]):
            assert m.read_bytes().decode() == f"note {s}: lr *warmup*"
        (table,) = media["errors"]
        t = json.loads(table.read_bytes())
        assert table.step == 4 and t["columns"] == ["id", "pred", "ok", "p"], t
        assert [[type(c).__name__ for c in r] for r in t["rows"]] == [["int", "str", "bool", "float"],
                                                                     ["int", "str", "bool", "NoneType"]], t
        assert t["rows"] == rows, t
        (audio,) = media["tone"]
        with wave.open(io.BytesIO(audio.read_bytes())) as w:
            assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (8000, 1, 4000)
        assert rec.info.media.get("image") == 5 and rec.info.media.get("histogram") == 5, rec.info.media

    def test_media_bad_values_never_stop_the_scalars(self, tmp_path: Any) -> None:
        import numpy as np

        import trackkit

        def body(run: Any) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run.log({"loss": 0.5, "bad": trackkit.Image(np.full((4, 4), np.nan)),
                         "empty": trackkit.Histogram([]), "ok": trackkit.Text("fine")}, step=0)

        rec = self.record(tmp_path, body)
        self.assert_points(rec, "loss", [(0, 0.5)])
        assert sorted(rec.media()) == ["ok"], sorted(rec.media())
