"""init(capture=...) turns provenance parts off one at a time."""

from __future__ import annotations

import trackkit
from trackkit.events import Artifact
from trackkit.provenance import pillar_status
from trackkit.testing import capture


def test_capture_parts_can_be_turned_off_one_by_one() -> None:
    with capture(capture={"git": False, "packages": False}) as cap:
        run = trackkit.init(project="p", seed=3)
        run.finish()
    status = pillar_status(run.meta)
    assert status["git"] == "disabled"
    assert status["env"] == "ok" and status["invocation"] == "ok" and status["seed"] == "ok"
    artifacts = {e.name for e in cap.run.events if isinstance(e, Artifact)}
    assert "requirements.txt" not in artifacts and "uncommitted_changes.patch" not in artifacts


def test_capture_on_records_the_package_list() -> None:
    with capture(capture={"git": False}) as cap:
        run = trackkit.init(project="p", seed=3)
        run.finish()
    assert "requirements.txt" in {e.name for e in cap.run.events if isinstance(e, Artifact)}


def test_capture_all_off() -> None:
    with capture(capture=False):
        run = trackkit.init(project="p")
        run.finish()
    status = pillar_status(run.meta)
    assert status["git"] == status["env"] == status["invocation"] == "disabled"
