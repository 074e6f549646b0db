"""Console capture end to end, in real processes: kept, shown, redacted, crash reasons, `trackkit logs`,
and a dead or stopped agent that never blocks or breaks the trainer's writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

from tests.reliability.helpers import agent_pid, read_run, run_line, wait_agent_done
from trackkit.cli.logs import logs
from trackkit.events import Console, Status
from trackkit.journal import read_journal

PRINTER = os.path.join(os.path.dirname(__file__), "printer.py")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE" and not k.startswith("TRACKKIT_")}


def _script(tmp: str, body: str) -> subprocess.CompletedProcess[str]:
    path = os.path.join(tmp, "train.py")
    with open(path, "w") as fh:
        fh.write(textwrap.dedent(body))
    return subprocess.run([sys.executable, path], cwd=tmp, env=_env(), capture_output=True, text=True, timeout=180)


def _console_records(run_dir: str) -> list[dict[str, object]]:
    return [r for r in read_journal(os.path.join(run_dir, "journal.jsonl")) if r.get("k") == "console"]


def test_a_finished_run_keeps_its_console_and_the_terminal_still_shows_it(tmp_path: object) -> None:
    tmp = str(tmp_path)
    proc = _script(tmp, f"""
        import os, subprocess, sys, time, trackkit
        run = trackkit.init(project="c", backend="tensorboard:{tmp}/tb", root="{tmp}/j", advisories=False)
        print("RUN", run.id, run.dir, flush=True)
        print("to stdout")
        print("to stderr", file=sys.stderr)
        os.write(1, b"straight to fd 1\\n")
        subprocess.run(["echo", "from a subprocess"])
        for i in range(101):
            sys.stdout.write(f"\\rtraining {{i}}%")
            sys.stdout.flush()
        print()
        print("api key sk-proj-" + "a" * 40)
        run.finish(wait="delivery")  # TensorBoard is read below, from another process
        print("after finish: not kept")
    """)
    assert proc.returncode == 0, proc.stderr
    # the terminal shows everything, unchanged (the progress frames too)
    for text in ("to stdout", "straight to fd 1", "from a subprocess", "training 57%", "after finish: not kept"):
        assert text in proc.stdout, (text, proc.stdout)
    assert "to stderr" in proc.stderr
    run_id, run_dir = run_line(proc.stdout)
    with open(os.path.join(run_dir, "console.log")) as fh:
        kept = fh.read().splitlines()
    assert kept[:2] == [f"RUN {run_id} {run_dir}", "to stdout"]
    assert "straight to fd 1" in kept and "from a subprocess" in kept and "to stderr" in kept
    assert "training 100%" in kept and not any("training 57%" in line for line in kept)  # the final frame only
    assert not any("aaaaaaaaaa" in line for line in kept)  # redacted
    assert "after finish: not kept" not in kept
    # the journal's console records hold the same lines, delivered to TensorBoard
    journaled = "".join(str(r["text"]) for r in _console_records(run_dir)).splitlines()
    assert journaled == kept
    rec = read_run(f"tensorboard:{tmp}/tb", run_id)
    assert rec.info.status is Status.COMPLETED
    # trackkit logs prints it
    result = CliRunner().invoke(logs, [run_id, "--root", f"{tmp}/j"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == kept
    last = CliRunner().invoke(logs, [run_id, "--root", f"{tmp}/j", "-n", "1", "-f"])  # a finished run: -f ends
    assert last.exit_code == 0 and last.output.splitlines() == kept[-1:]


def test_a_crashed_runs_reason_carries_its_last_lines_and_the_traceback(tmp_path: object) -> None:
    tmp = str(tmp_path)
    proc = subprocess.run([sys.executable, PRINTER, f"tensorboard:{tmp}/tb", f"{tmp}/j", "--n", "5", "--interval",
                           "0.01", "--mode", "crash"], env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1
    assert "RuntimeError: boom at the end" in proc.stderr  # the traceback still reaches the terminal
    run_id, run_dir = run_line(proc.stdout)
    wait_agent_done(run_dir)
    rec = read_run(f"tensorboard:{tmp}/tb", run_id)
    assert rec.info.status is Status.CRASHED
    reason = rec.info.reason
    assert reason.startswith("RuntimeError: boom at the end\nlast output:\n"), reason
    assert "err 4" in reason and "out 4 password=***REDACTED***" in reason
    assert "Traceback (most recent call last)" in reason  # printed before the run was finished
    with open(os.path.join(run_dir, "console.log")) as fh:
        assert "RuntimeError: boom at the end" in fh.read()


@pytest.mark.slow
def test_a_dead_agent_never_breaks_the_trainers_writes(tmp_path: object) -> None:
    """The agent is SIGKILLed mid-run: the trainer goes on printing to the terminal (no EPIPE, no
    SIGPIPE, no block), exits 0, and says what was not kept."""
    tmp = str(tmp_path)
    proc = subprocess.Popen([sys.executable, PRINTER, f"tensorboard:{tmp}/tb", f"{tmp}/j", "--n", "60",
                             "--interval", "0.05"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("RUN "), first
    run_dir = first.split()[2]
    os.kill(agent_pid(run_dir), signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "out 59 " in out and "err 59" in err  # every line still reached the terminal
    assert "console capture stopped (the agent exited)" in err  # the warning at finish
    notes = [r for r in _console_records(run_dir) if "console capture stopped" in str(r["text"])]
    assert len(notes) == 1


@pytest.mark.slow
def test_a_stopped_agent_does_not_block_a_trainer_that_prints_more_than_the_pipe_holds(tmp_path: object) -> None:
    tmp = str(tmp_path)
    script = os.path.join(tmp, "burst.py")
    with open(script, "w") as fh:
        fh.write(textwrap.dedent(f"""
            import json, sys, time, trackkit
            run = trackkit.init(project="c", backend="tensorboard:{tmp}/tb", root="{tmp}/j", advisories=False,
                                system_metrics=False)
            print("RUN", run.id, run.dir, flush=True)
            sys.stdin.readline()  # the test has stopped the agent
            t0 = time.monotonic()
            line = "x" * 1023 + "\\n"
            for i in range(4096):  # 4 MiB: four times what the pipe holds
                sys.stdout.write(line)
            sys.stdout.flush()
            took = time.monotonic() - t0
            run.finish(timeout=1)
            print(json.dumps({{"took": took, "lost": run.problems.get("console", 0)}}), file=sys.stderr, flush=True)
        """))
    # the terminal is two files: the stopped agent holds a copy of them, which a pipe's reader would
    # wait on for its end; the trainer's own exit is what is under test
    out_path, err_path = os.path.join(tmp, "out.txt"), os.path.join(tmp, "err.txt")
    with open(out_path, "w") as out_f, open(err_path, "w") as err_f:
        proc = subprocess.Popen([sys.executable, script], env=_env(), stdin=subprocess.PIPE, stdout=out_f,
                                stderr=err_f, text=True)
    assert proc.stdin is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not open(out_path).read().startswith("RUN "):
        time.sleep(0.05)
    run_dir = open(out_path).read().split()[2]
    pid = agent_pid(run_dir)
    os.kill(pid, signal.SIGSTOP)
    try:
        proc.stdin.write("go\n")
        proc.stdin.flush()
        proc.wait(timeout=120)
    finally:
        os.kill(pid, signal.SIGCONT)
    out, err = open(out_path).read(), open(err_path).read()
    assert proc.returncode == 0, err
    assert out.count("x" * 1023) >= 4000  # shown on the terminal, through the fallback
    result = json.loads(err.strip().splitlines()[-1])
    assert result["took"] < 30, result  # bounded by the watchdog, not by the stopped agent
    assert result["lost"] == 1, result


def test_thread_agent_captures_fd_writes_into_the_memory_backend() -> None:
    """agent="thread" (memory:): the same pipes, read by a thread of this process; pytest's own
    capture of fd 1 still gets the output."""
    import trackkit
    from trackkit.backends.memory import store

    run = trackkit.init(project="c", backend="memory:console-thread", capture=False, advisories=False)
    os.write(1, b"fd-level line from the test\n")
    run.finish()
    events = store("console-thread")[run.id].events
    text = "".join(ev.text for ev in events if isinstance(ev, Console))
    assert "fd-level line from the test" in text
    os.write(1, b"after\n")  # fd 1 is pytest's capture again: writing to it works


def test_console_false_keeps_nothing(tmp_path: object) -> None:
    tmp = str(tmp_path)
    proc = _script(tmp, f"""
        import trackkit
        run = trackkit.init(project="c", backend="tensorboard:{tmp}/tb", root="{tmp}/j", console=False,
                            system_metrics=False, advisories=False)
        print("RUN", run.id, run.dir, flush=True)
        run.finish()
    """)
    assert proc.returncode == 0, proc.stderr
    _, run_dir = run_line(proc.stdout)
    assert not os.path.exists(os.path.join(run_dir, "console.log"))
    assert _console_records(run_dir) == []
