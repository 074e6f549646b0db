"""Console output and system metrics, kept without asking (docs/console-and-system.md).

    python examples/console_and_system.py

Prints from Python, from a subprocess and as a progress bar; the run keeps it all (redacted,
the bar as its final line) and the agent samples the machine every second. Then reads both back:
``trackkit logs RUN`` and the run's ``system/...`` samples from the journal.
"""

from __future__ import annotations

import subprocess
import sys
import time

import trackkit
from trackkit.journal import load_run


def main() -> None:
    run = trackkit.init(project="console-demo", backend="tensorboard:./runs", seed=0, advisories=False,
                        system_metrics_interval=1)
    print("training starts; api_key=sk-proj-" + "x" * 40)  # a secret: stored redacted
    subprocess.run([sys.executable, "-c", "print('a subprocess prints too')"], check=True)
    for step in range(30):
        run.log({"train/loss": 1.0 / (step + 1)})
        sys.stdout.write(f"\rstep {step + 1}/30")  # a progress bar: stored as its last frame
        sys.stdout.flush()
        time.sleep(0.1)
    print()
    run.finish()

    print("\n--- trackkit logs", run.id)
    subprocess.run([sys.executable, "-m", "trackkit", "logs", run.id], check=True)
    rec = load_run(run.dir)
    from trackkit.events import SystemMetrics

    samples = [ev for ev in rec.events if isinstance(ev, SystemMetrics)]
    print(f"\n--- {len(samples)} system samples; the last:")
    for key, value in sorted(samples[-1].values.items()) if samples else ():
        print(f"{key:45s} {value:10.1f}")


if __name__ == "__main__":
    main()
