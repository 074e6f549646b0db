"""A deterministic run: same code + same argv + same packages => bit-identical metrics.

    python examples/reproducible.py --seed 7 --lr 0.05 --steps 100
    trackkit doctor <run id>          # which of the five pillars the run recorded
    trackkit reproduce <run id> --run # rebuild it from its record and run it again

Everything that decides the numbers comes from the command line (seed, lr, steps) or from the code
(DEFAULTS below), so re-running the recorded command at the recorded commit reproduces the run.
CPU only, one thread: a small MLP on synthetic regression data, about a second.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import trackkit

DEFAULTS = {"seed": 0, "lr": 0.05, "steps": 100, "hidden": 32, "n": 256}


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden"])
    args = p.parse_args(argv)
    cfg = {**DEFAULTS, **vars(args)}

    torch.set_num_threads(1)  # one thread: the CPU reductions run in one fixed order
    trackkit.seed_everything(args.seed, deterministic=True)  # recorded by init as the seed pillar
    gen = torch.Generator().manual_seed(args.seed)
    X = torch.randn(cfg["n"], 8, generator=gen)
    y = torch.sin(X @ torch.randn(8, 1, generator=gen))
    model = nn.Sequential(nn.Linear(8, args.hidden), nn.Tanh(), nn.Linear(args.hidden, 1))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)

    data = {"name": "synthetic-sine", "version": f"seed{args.seed}-n{cfg['n']}"}
    with trackkit.init(config=cfg, project="reproducible", data=data) as run:
        for step in range(args.steps):
            loss = nn.functional.mse_loss(model(X), y)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            run.log({"train/loss": loss.item()}, step=step)
    print(f"run {run.id} {run.status.value}: final loss {loss.item():.6f}")
    return run.id


if __name__ == "__main__":
    main()
