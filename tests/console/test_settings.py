"""The console and system-metrics settings: defaults, environment, one-line errors."""

from __future__ import annotations

import pytest

from trackkit.errors import ConfigError
from trackkit.settings import load_settings


def test_on_by_default_every_ten_seconds(tmp_path: object) -> None:
    s = load_settings({}, environ={}, cwd=str(tmp_path))
    assert (s.console, s.system_metrics, s.system_metrics_interval) == (True, True, 10.0)


def test_the_environment_switches_them(tmp_path: object) -> None:
    env = {"TRACKKIT_CONSOLE": "false", "TRACKKIT_SYSTEM_METRICS": "0", "TRACKKIT_SYSTEM_METRICS_INTERVAL": "2.5"}
    s = load_settings({}, environ=env, cwd=str(tmp_path))
    assert (s.console, s.system_metrics, s.system_metrics_interval) == (False, False, 2.5)
    assert load_settings({"console": True}, environ=env, cwd=str(tmp_path)).console is True  # kwargs win


def test_a_bad_interval_is_one_line_naming_the_field_and_the_fix(tmp_path: object) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({}, environ={"TRACKKIT_SYSTEM_METRICS_INTERVAL": "0"}, cwd=str(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("system_metrics_interval:")
    assert "TRACKKIT_SYSTEM_METRICS_INTERVAL" in msg and "Fix: use a number of seconds > 0" in msg
