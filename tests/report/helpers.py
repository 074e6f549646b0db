"""Runs a report test draws: written through ``trackkit.init`` into the journal (the memory backend),
with the untrusted strings of issue 15 in every place a user string can be."""

from __future__ import annotations

import math
import os

import numpy as np

import trackkit

XSS = "<img src=x onerror=alert(1)>"
#: would set the page's title if it ever ran as HTML
TITLE_XSS = "<img src=x onerror=\"document.title='pwned'\">"
SCRIPT_XSS = "</script><script>document.title='pwned'</script>"


def write_runs(root: str, n: int = 3, steps: int = 300) -> list[str]:
    """``n`` runs in project ``rep`` under ``root``: the first named :data:`XSS`; config, tags, a
    metric key, an image caption and a crash reason carrying script; a checkpoint artifact; the
    ``sweep.objective`` tag so the sweep view is drawn. Returns the run ids, oldest first."""
    ids = []
    for i in range(n):
        name = XSS if i == 0 else f"run-{i}"
        run = trackkit.init(project="rep", backend="memory", agent="thread", capture=False, root=root, name=name,
                            config={"lr": 10 ** -(i + 1), "opt": TITLE_XSS if i == 1 else "adam", "layers": i + 2,
                                    "seed": 1},
                            tags={"sweep.objective": "val/acc", "note": SCRIPT_XSS})
        for s in range(steps):
            run.log({"train/loss": math.exp(-s / (50 * (i + 1))) + 0.01 * ((s * 7919) % 13),
                     "val/acc": 1 - math.exp(-s / (40 * (i + 1))), f"weird/{SCRIPT_XSS}": float(s % 10)}, step=s)
        img = np.zeros((24, 24, 3), dtype=np.uint8)
        img[:, : 8 * (i + 1)] = (255, 80 * i, 0)
        run.log({"samples": trackkit.Image(img, caption=TITLE_XSS)}, step=steps)
        ck = os.path.join(root, f"ck{i}.pt")
        with open(ck, "wb") as fh:
            fh.write(b"w" * 1000)
        run.log_artifact(ck, "model", kind="checkpoint", aliases=["best"])
        if i == 2:
            run.finish("crashed", reason=f"RuntimeError: {XSS}")
        else:
            run.finish()
        ids.append(run.id)
    return ids
