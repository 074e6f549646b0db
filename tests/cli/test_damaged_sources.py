"""A source whose files are cut mid-record (a TensorBoard event file, a W&B ``.wandb`` run file): ``migrate``
copies and verifies the readable part and says so per run, in the table, the last line and ``--json``
(``source_damaged``, ``damage``); ``runs`` shows the damage on the run (docs/reading-back.md).

Fixtures are written by torch's ``SummaryWriter`` and ``wandb`` directly, then cut."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tk_cli import invoke

pytest.importorskip("tensorboard")


def _cut_tensorboard(root: Path) -> Path:
    """A SummaryWriter run ``r`` under ``root`` whose event file loses the tail of its last record."""
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(root / "r"))
    for s in range(20):
        w.add_scalar("loss", 1.0 / (s + 1), s)
    w.close()
    (path,) = (root / "r").glob("events.out.tfevents.*")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])
    return path


def _cut_wandb(root: Path) -> Path:
    """A wandb offline run ``cut1`` of project ``p`` whose run file is cut 50 bytes before its end."""
    import wandb

    from trackkit.backends.wandb import has_exit_record

    run = wandb.init(project="p", id="cut1", dir=str(root), reinit="create_new",
                     settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
    for s in range(5):
        run.log({"loss": 1.0 / (s + 1)}, step=s)
    path = Path(str(run.settings.sync_file))
    run.finish()
    deadline = time.monotonic() + 30
    while not has_exit_record(str(path)) and time.monotonic() < deadline:  # finish() can return before the file is
        time.sleep(0.05)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 50])
    return path


@pytest.fixture
def cut_tb(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    monkeypatch.setenv("COLUMNS", "250")
    return f"tensorboard:{in_tmp}/logs", _cut_tensorboard(in_tmp / "logs")


@pytest.fixture
def cut_wb(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    pytest.importorskip("wandb")
    monkeypatch.setenv("COLUMNS", "250")
    return f"wandb:p?dir={in_tmp}", _cut_wandb(in_tmp)


def _assert_migrated_in_part(source: str, path: Path, run_id: str, target: str) -> None:
    code, out = invoke("migrate", "--from", source, "--to", target, "--all")
    assert code == 0, out  # the readable part was copied and verified: something could be done
    assert "copied in part" in out
    line = next(ln for ln in out.splitlines() if ln.startswith(f"run {run_id}: "))
    assert line.startswith(f"run {run_id}: migrated and verified the readable part; the source is damaged: "
                           f"{path} cut at byte "), out
    assert out.rstrip().splitlines()[-1] == "1 of 1 runs migrated and verified (1 of them only in part: the source " \
                                            "is damaged)"


def _assert_json_damage(source: str, path: Path, target: str) -> None:
    code, out = invoke("migrate", "--from", source, "--to", target, "--all", "--json")
    assert code == 0, out
    (rep,) = json.loads(out[out.index("["):])
    assert rep["ok"] is True and rep["source_damaged"] is True
    (damage,) = rep["damage"]
    assert damage.startswith(f"{path} cut at byte "), damage


def _assert_runs_show_damage(source: str, path: Path, run_id: str) -> None:
    code, out = invoke("runs", "--backend", source)
    assert code == 0, out
    (row,) = [ln for ln in out.splitlines() if ln.startswith(f"│ {run_id} ")]
    assert "damaged" in row
    assert f"run {run_id}: the stored run is damaged: {path} cut at byte " in out
    code, out = invoke("runs", "--backend", source, "--json")
    (info,) = json.loads(out)
    (damage,) = info["damage"]
    assert damage.startswith(f"{path} cut at byte ")


def test_migrate_of_a_cut_event_file_says_only_the_readable_part_was_copied(cut_tb: tuple[str, Path],
                                                                              in_tmp: Path) -> None:
    source, path = cut_tb
    _assert_migrated_in_part(source, path, "r", f"mlflow:{in_tmp}/m.db")
    _assert_json_damage(source, path, f"tensorboard:{in_tmp}/again")
    from trackkit.migrate import migrate

    rep = migrate("r", source, f"tensorboard:{in_tmp}/third")  # the library's report says the same
    assert rep.ok and rep.source_damaged
    text = rep.summary()
    assert "copied the readable part (the source is damaged)" in text.splitlines()[0]
    assert f"  damaged source: {path} cut at byte " in text


def test_runs_shows_a_cut_event_file_on_its_run(cut_tb: tuple[str, Path]) -> None:
    _assert_runs_show_damage(*cut_tb, "r")


def test_migrate_of_a_cut_wandb_run_file_says_only_the_readable_part_was_copied(cut_wb: tuple[str, Path],
                                                                                 in_tmp: Path) -> None:
    source, path = cut_wb
    _assert_migrated_in_part(source, path, "cut1", f"mlflow:{in_tmp}/m.db")
    _assert_json_damage(source, path, f"tensorboard:{in_tmp}/again")


def test_runs_shows_a_cut_wandb_run_file_on_its_run(cut_wb: tuple[str, Path]) -> None:
    _assert_runs_show_damage(*cut_wb, "cut1")


def test_a_whole_source_is_not_called_damaged(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.utils.tensorboard import SummaryWriter

    monkeypatch.setenv("COLUMNS", "250")
    w = SummaryWriter(str(in_tmp / "logs" / "r"))
    w.add_scalar("loss", 1.0, 0)
    w.close()
    code, out = invoke("migrate", "--from", f"tensorboard:{in_tmp}/logs", "--to", f"mlflow:{in_tmp}/m.db", "--all",
                        "--json")
    (rep,) = json.loads(out[out.index("["):])
    assert code == 0 and rep["source_damaged"] is False and rep["damage"] == []
    code, out = invoke("runs", "--backend", f"tensorboard:{in_tmp}/logs")
    assert code == 0 and "damaged" not in out
