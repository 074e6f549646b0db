"""The team standard in trackkit.toml: every run in the repository follows it."""

from __future__ import annotations

import os
import warnings

import pytest

import trackkit
from trackkit.testing import capture


def _write(d: str, text: str) -> None:
    os.makedirs(os.path.join(d, ".git"), exist_ok=True)
    with open(os.path.join(d, "trackkit.toml"), "w") as fh:
        fh.write(text)


STANDARD = """
[trackkit]
project = "team-proj"

[trackkit.standard]
name_template = "{project}-{date}-{id}"
required_tags = ["owner"]
required_config = ["optimizer.lr", "seed"]
required_provenance = ["seed"]
"""


def test_run_inside_repo_picks_up_standard(in_tmp: object, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(str(in_tmp), STANDARD)
    with capture() as cap:
        with trackkit.init(config={"optimizer": {"lr": 0.1}, "seed": 1}, tags={"owner": "ana"}, seed=1) as run:
            run.log({"x": 1.0}, step=0)
    assert run.project == "team-proj"
    assert run.name.startswith("team-proj-") and run.name.endswith(run.id)
    assert cap.run.info.status.value == "completed"


def test_breaking_the_standard_warns_once_naming_what_is_missing(in_tmp: object) -> None:
    _write(str(in_tmp), STANDARD)
    from trackkit.provenance import clear_seed_record

    clear_seed_record()
    with capture(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with trackkit.init(config={"optimizer": {"lr": 0.1}}):
            pass
    msgs = [str(w.message) for w in caught if "team standard" in str(w.message)]
    assert len(msgs) == 1
    for part in ("tag 'owner'", "config key 'seed'", "provenance 'seed'"):
        assert part in msgs[0]


def test_strict_mode_makes_it_an_error(in_tmp: object) -> None:
    _write(str(in_tmp), STANDARD + "\n")
    with capture(strict=True):
        with pytest.raises(trackkit.ConfigError, match="owner"):
            trackkit.init(config={"optimizer": {"lr": 0.1}, "seed": 1}, seed=1)
