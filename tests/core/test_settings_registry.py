from __future__ import annotations

import os

import pytest

from trackkit.errors import BackendNotFound, ConfigError, MissingDependency
from trackkit.registry import check_available, known_schemes, parse_backend, parse_backends, strip_credentials
from trackkit.settings import load_settings


def test_precedence_kwargs_env_toml_pyproject(tmp_path: object) -> None:
    d = str(tmp_path)
    os.mkdir(os.path.join(d, ".git"))
    with open(os.path.join(d, "pyproject.toml"), "w") as fh:
        fh.write('[tool.trackkit]\nproject = "from-pyproject"\non_nan = "stop"\ndrain_timeout = 3\n')
    sub = os.path.join(d, "sub")
    os.mkdir(sub)
    s = load_settings({}, environ={}, cwd=sub)
    assert (s.project, s.on_nan, s.drain_timeout) == ("from-pyproject", "stop", 3)
    with open(os.path.join(d, "trackkit.toml"), "w") as fh:
        fh.write('[trackkit]\nproject = "from-toml"\nbackend = ["wandb:x", "mlflow:./m.db"]\n')
    s = load_settings({}, environ={}, cwd=sub)
    assert s.project == "from-toml" and s.on_nan == "stop" and s.backend == ["wandb:x", "mlflow:./m.db"]
    s = load_settings({}, environ={"TRACKKIT_PROJECT": "from-env"}, cwd=sub)
    assert s.project == "from-env"
    s = load_settings({"project": "from-kwarg"}, environ={"TRACKKIT_PROJECT": "from-env"}, cwd=sub)
    assert s.project == "from-kwarg"


def test_error_names_field_source_and_fix(tmp_path: object) -> None:
    with pytest.raises(ConfigError) as ei:
        load_settings({}, environ={"TRACKKIT_DRAIN_TIMEOUT": "soon"}, cwd=str(tmp_path))
    msg = str(ei.value)
    assert "drain_timeout" in msg and "TRACKKIT_DRAIN_TIMEOUT" in msg and "Fix:" in msg and "soon" in msg
    with pytest.raises(ConfigError, match="on_nan.*init\\(\\) argument.*Fix"):
        load_settings({"on_nan": "explode"}, environ={}, cwd=str(tmp_path))


def test_unknown_setting_in_toml(tmp_path: object) -> None:
    d = str(tmp_path)
    with open(os.path.join(d, "trackkit.toml"), "w") as fh:
        fh.write('projcet = "typo"\n')
    with pytest.raises(ConfigError, match="projcet.*trackkit.toml.*Fix"):
        load_settings({}, environ={}, cwd=d)


def test_backend_strings() -> None:
    tb = parse_backend("tensorboard:./runs")
    assert tb.scheme == "tensorboard" and os.path.isabs(tb.location)
    assert parse_backend("tensorboard").location == os.path.abspath("./runs")
    m = parse_backend("mlflow://127.0.0.1:5000")
    assert (m.scheme, m.location) == ("mlflow", "http://127.0.0.1:5000")
    assert parse_backend("mlflow+https://mlflow.example.com/x").location == "https://mlflow.example.com/x"
    assert parse_backend("mlflow:./m.db").location == os.path.abspath("./m.db")
    w = parse_backend("wandb:proj?entity=team&group=g")
    assert (w.location, dict(w.options)) == ("proj", {"entity": "team", "group": "g"})
    assert [s.scheme for s in parse_backends("tensorboard:./runs,wandb:p;mlflow:./m.db")] == [
        "tensorboard", "wandb", "mlflow"]
    assert parse_backend("memory:").scheme == "memory"


def test_unknown_scheme_lists_known() -> None:
    with pytest.raises(BackendNotFound) as ei:
        parse_backend("neptune:x")
    for s in ("tensorboard", "wandb", "mlflow", "memory"):
        assert s in str(ei.value)
    assert set(known_schemes()) >= {"tensorboard", "wandb", "mlflow", "memory"}


def test_missing_sdk_names_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(MissingDependency, match=r"pip install 'trackkit\[mlflow\]'"):
        check_available(parse_backend("mlflow:./x.db"))


def test_credentials_stripped() -> None:
    s = strip_credentials(parse_backend("mlflow+https://user:s3cret@host.example/x"))
    assert "s3cret" not in s and "user" not in s and "host.example" in s


def test_plugin_registration() -> None:
    from trackkit.registry import BackendEntry, register

    register(BackendEntry("mine", "trackkit.backends.memory:MemorySink", "trackkit.backends.memory:MemoryReader",
                          in_process=True))
    assert parse_backend("mine:x").scheme == "mine"
    assert "mine" in known_schemes()


def test_entry_point_plugin_is_discovered(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party package registers a backend through the `trackkit.backends` entry-point group."""
    import sys

    from trackkit import registry

    d = str(tmp_path)
    os.makedirs(os.path.join(d, "tk_plugin_demo"))
    with open(os.path.join(d, "tk_plugin_demo", "__init__.py"), "w") as fh:
        fh.write("from trackkit.backends.memory import MemorySink\n\n"
                 "class DemoSink(MemorySink):\n    reader = 'trackkit.backends.memory:MemoryReader'\n")
    dist = os.path.join(d, "tk_plugin_demo-0.1.dist-info")
    os.makedirs(dist)
    with open(os.path.join(dist, "METADATA"), "w") as fh:
        fh.write("Metadata-Version: 2.1\nName: tk-plugin-demo\nVersion: 0.1\n")
    with open(os.path.join(dist, "entry_points.txt"), "w") as fh:
        fh.write("[trackkit.backends]\ndemo = tk_plugin_demo:DemoSink\n")
    monkeypatch.syspath_prepend(d)
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "_PLUGINS", {})
    assert "demo" in registry.known_schemes()
    spec = parse_backend("demo:x")
    sink = registry.load_sink(spec)
    assert type(sink).__name__ == "DemoSink"
    assert type(registry.load_reader(spec)).__name__ == "MemoryReader"
    sys.modules.pop("tk_plugin_demo", None)
