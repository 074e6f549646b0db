"""Packaging as a new user meets it (issue 16.3): an install prints no setuptools warnings, the
extras that messages name exist, and the Python floor in pyproject.toml is the one that works."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import pytest

from trackkit.util import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pyproject() -> dict[str, object]:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        return tomllib.load(fh)


def test_every_extra_that_a_message_names_installs_something() -> None:
    """``pip install 'trackkit[X]'`` in a message (literal, or a backend's registered extra) installs
    something: the extra exists and is not empty."""
    from trackkit.registry import entry_for

    extras: dict[str, list[str]] = _pyproject()["project"]["optional-dependencies"]  # type: ignore[index]
    named = {entry_for(s).extra or "" for s in ("tensorboard", "wandb", "mlflow")}
    for path in glob.glob(os.path.join(ROOT, "trackkit", "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as fh:
            named.update(re.findall(r"trackkit\[([a-z]+)\]", fh.read()))
    assert {"tensorboard", "wandb", "mlflow"} <= named, named
    for extra in sorted(named):
        assert extras.get(extra), f"messages say pip install 'trackkit[{extra}]': the extra is missing or empty"


@pytest.mark.slow
def test_building_the_package_prints_no_setuptools_warnings(tmp_path: object) -> None:
    """The metadata build of ``pip install -e .`` (setuptools of this venv, no network): no deprecation
    warnings (``license = { text = ... }`` printed ~36 lines and becomes an error in 2027)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), ROOT],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "Warning" not in out and "deprecated" not in out.lower(), out[-3000:]


def _python310() -> str | None:
    for cand in ["python3.10", *glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10")),
                 *glob.glob("/root/.pyenv/versions/3.10*/bin/python3.10")]:
        try:
            out = subprocess.run([cand, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                                 text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 10)":
            return cand
    return None


@pytest.mark.slow
def test_python_3_10_reads_trackkit_toml(tmp_path: object) -> None:
    """``requires-python >= 3.10``: on 3.10 (no ``tomllib``) trackkit imports and reads its settings
    file through ``tomli``."""
    py = _python310()
    if py is None:
        pytest.skip("no Python 3.10 interpreter on this machine")
    venv = os.path.join(str(tmp_path), "venv310")
    subprocess.run([py, "-m", "venv", venv], check=True, timeout=120)
    vpy = os.path.join(venv, "bin", "python")
    deps = [d for d in _pyproject()["project"]["dependencies"] if not d.startswith("tensorboard")]  # type: ignore[index]
    pip = subprocess.run([vpy, "-m", "pip", "install", "-q", *deps], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    work = os.path.join(str(tmp_path), "proj")
    os.makedirs(work)
    with open(os.path.join(work, "trackkit.toml"), "w") as fh:
        fh.write('[trackkit]\nproject = "from-toml"\nbackend = "memory:x"\n')
    code = ("import sys, trackkit; from trackkit.settings import load_settings; "
            "s = load_settings({}); print(sys.version_info[:2], s.project, s.backend, 'tomllib' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKKIT_")}
    env["PYTHONPATH"] = ROOT  # the checkout itself (tensorboard, an SDK, is not needed to read settings)
    proc = subprocess.run([vpy, "-c", code], cwd=work, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["(3,", "10)", "from-toml", "['memory:x']", "False"], proc.stdout
