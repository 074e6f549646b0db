"""What a new user trips over in the first hour (issue 16): warnings that point at the user's own
line, one warning per problem, nested dicts in log(), advisory noise that can be silenced."""

from __future__ import annotations

import warnings

import trackkit
from trackkit.errors import TrackkitWarning
from trackkit.testing import capture


def _trackkit_warnings(rec: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in rec if issubclass(w.category, TrackkitWarning)]


def test_nested_dicts_in_log_are_flattened_by_the_config_rule() -> None:
    with capture() as cap:
        with trackkit.init(project="p") as run:
            run.log({"train": {"loss": 0.5, "acc": {"top1": 0.9}}, "lr": 0.1}, step=0)
            run.log({"train": {}}, step=1)  # an empty mapping holds no value: skipped, warned
        assert run.problems["value"] == 1
    assert cap.metrics("train.loss") == [(0, 0.5)]
    assert cap.metrics("train.acc.top1") == [(0, 0.9)]
    assert cap.metrics("lr") == [(0, 0.1)]
    assert "train" not in cap.run.metrics()


def test_each_different_problem_is_warned_once_and_points_at_the_users_line() -> None:
    with capture():
        run = trackkit.init(project="p")
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            for _ in range(3):
                run.log({"a": "text"})  # the same problem three times: one warning
            run.log({"a": [1.0, 2.0]})  # another problem with the same key: its own warning
            run.log({"b": "text"})  # another key: its own warning
        run.finish()
    got = _trackkit_warnings(rec)
    assert len(got) == 3, [str(w.message) for w in got]
    assert all(w.filename == __file__ for w in got), [(w.filename, w.lineno) for w in got]
    assert run.problems["value"] == 5


def test_the_init_and_module_level_warnings_point_at_the_users_line() -> None:
    with capture():
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            trackkit.init(project="p")
            trackkit.init(project="p")  # finishes the first, warned
            trackkit.finish()
            trackkit.log({"x": 1.0})  # no active run
    got = _trackkit_warnings(rec)
    assert {("still active" in str(w.message)) or ("no active run" in str(w.message)) for w in got} == {True}
    assert len(got) == 2
    assert all(w.filename == __file__ for w in got), [(w.filename, w.lineno) for w in got]


def test_a_run_that_warns_about_many_problems_stops_after_twenty() -> None:
    with capture():
        run = trackkit.init(project="p")
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            for i in range(50):
                run.log({f"k{i}": "text"})
        run.finish()
    got = _trackkit_warnings(rec)
    assert len(got) == 21 and "more than 20 different problems" in str(got[-1].message)
    assert run.problems["value"] == 50
