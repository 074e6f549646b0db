"""Names that say what ran (issue 13, part 4): the default name from the config's common keys, the
fallback, ``name_template`` with ``{config.KEY}`` (kwarg, env, trackkit.toml's standard), and unique names."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

import trackkit
from trackkit.errors import ConfigError
from trackkit.naming import check_template, config_name, default_name, format_template

T = time.mktime((2026, 12, 1, 18, 44, 16, 0, 0, -1))


def test_config_name_uses_the_common_keys_nested_too() -> None:
    cfg = {"model": "resnet18", "dataset": "cifar10", "optimizer": {"name": "sgd", "lr": 0.01}, "batch_size": 128}
    assert config_name(cfg) == "resnet18_cifar10_lr0.01_bs128"
    assert default_name(None, "p", "abcd1234", T, None, cfg) == "resnet18_cifar10_lr0.01_bs128_20261201-184416"
    assert config_name({"arch": "vit-b/16", "data": "/datasets/imagenet/", "learning_rate": 3e-4, "bs": 64}) == \
        "vit-b-16_imagenet_lr0.0003_bs64"
    assert config_name({"train": {"batch_size": 32}, "lr": 1e-5}) == "lr1e-05_bs32"
    assert config_name({"lr": 0.1, "optimizer": {"lr": 0.5}}) == "lr0.1"  # the top level first
    assert config_name({"model": {"depth": 3}, "epochs": 3}) == ""  # none of the keys holds a scalar
    assert default_name(None, "p", "abcd1234", T, None, {"epochs": 3}) == "20261201-184416-1234"  # today's form


def test_templates_take_config_keys_and_a_bad_one_names_the_fields() -> None:
    cfg = {"model": "mlp", "optimizer": {"lr": 0.01, "name": "adam"}}
    text, missing = format_template("{config.model}-{config.optimizer.name}-lr{config.optimizer.lr}-{date}", "p",
                                    "id1", "20261201-184416", None, cfg)
    assert (text, missing) == ("mlp-adam-lr0.01-20261201-184416", [])
    assert format_template("{config[optimizer.lr]:.3f}/{project}/{group}", "p", "i", "d", "g", cfg)[0] == \
        "0.010/p/g"
    with pytest.warns(trackkit.TrackkitWarning, match=r"no 'seed'; written as 'none'"):
        assert default_name("{config.seed}-{id}", "p", "id1", T, None, cfg) == "none-id1"
    with pytest.raises(ConfigError, match=r"name_template: '\{nope\}' cannot be formatted.*\{config\.KEY\}"):
        check_template("{nope}")


def test_init_names_runs_from_the_config_and_keeps_names_unique(tmp_path: Path) -> None:
    cfg = {"model": "resnet18", "dataset": "cifar10", "optimizer": {"lr": 0.01}, "batch_size": 128}
    names = []
    for _ in range(3):  # the same config, within the same second or two: each name once
        run = trackkit.init(cfg, backend="memory:names", root=str(tmp_path), agent="thread", capture=False,
                            advisories=False)
        run.finish()
        names.append(run.name)
    assert len(set(names)) == 3
    assert all(re.fullmatch(r"resnet18_cifar10_lr0\.01_bs128_\d{8}-\d{6}(-[0-9a-f]{4})?", n) for n in names)
    run = trackkit.init(cfg, backend="memory:names", root=str(tmp_path), agent="thread", capture=False,
                        advisories=False, name="mine")
    run.finish()
    assert run.name == "mine"


def test_name_template_setting_from_env_and_without_time_still_unique(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKKIT_NAME_TEMPLATE", "{config.model}-bs{config.batch_size}")
    got = []
    for _ in range(2):
        run = trackkit.init({"model": "mlp", "batch_size": 8}, backend="memory:names2", root=str(tmp_path),
                            agent="thread", capture=False, advisories=False)
        run.finish()
        got.append((run.name, run.id))
    assert got[0][0] == "mlp-bs8"
    assert got[1][0] == f"mlp-bs8-{got[1][1][-4:]}"  # taken: the id's last four characters make it unique


def test_the_standards_template_takes_config_keys_and_doctor_accepts_it(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "trackkit.toml").write_text('[trackkit.standard]\nname_template = "{project}-{config.lr}-{id}"\n')
    monkeypatch.chdir(tmp_path)
    run = trackkit.init({"lr": 0.5}, project="proj", backend="memory:names3", root=str(tmp_path / "j"),
                        agent="thread", capture=False, advisories=False)
    run.finish()
    assert run.name == f"proj-0.5-{run.id}"
    from click.testing import CliRunner

    from trackkit.cli import main

    out = CliRunner().invoke(main, ["doctor", "--root", str(tmp_path / "j")]).output
    assert "name template: {project}-{config.lr}-{id}" in out
