"""Distributed launches (torchrun, SLURM, accelerate, Lightning DDP): which rank this process is, and
what ``init`` does on it (docs/distributed.md). Rank 0 records; another rank gets a run that records
nothing (``noop.NoopRun``) unless ``ranks="all"``: then every rank records its own run, grouped, tagged."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RANK_VARIABLES", "Rank", "process_rank"]

#: where the rank is read from, first found wins (torchrun/accelerate set RANK and LOCAL_RANK; SLURM's
#: srun sets SLURM_PROCID, read only when the step runs more than one task)
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID")


@dataclass(frozen=True)
class Rank:
    rank: int
    world_size: int | None
    #: the variable the rank was read from
    source: str
    #: the same for every rank of one launch: the default group of ``ranks="all"`` runs
    launch: str


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None and text.strip() != "" else None
    except ValueError:
        return None


def process_rank(environ: Mapping[str, str] | None = None) -> Rank | None:
    """This process's rank in a distributed launch, or None when it is not one."""
    env = os.environ if environ is None else environ
    for name in RANK_VARIABLES:
        rank = _int(env.get(name))
        if rank is None:
            continue
        if name == "SLURM_PROCID" and (_int(env.get("SLURM_NTASKS")) or 1) <= 1:
            return None
        world = _int(env.get("WORLD_SIZE")) or _int(env.get("SLURM_NTASKS"))
        return Rank(rank, world, name, _launch_id(env))
    return None


def _launch_id(env: Mapping[str, str]) -> str:
    """An id every rank of one launch computes alike: torchrun's run id, SLURM's job and step, the
    rendezvous address, else the host and the parent process (a launcher's ranks are its children)."""
    rdzv = env.get("TORCHELASTIC_RUN_ID")
    if rdzv and rdzv != "none":
        return f"ddp-{rdzv}"
    if env.get("SLURM_JOB_ID"):
        return f"slurm-{env['SLURM_JOB_ID']}.{env.get('SLURM_STEP_ID', '0')}"
    if env.get("MASTER_ADDR") and env.get("MASTER_PORT"):
        return f"ddp-{env['MASTER_ADDR']}-{env['MASTER_PORT']}"
    return f"ddp-{socket.gethostname()}-{os.getppid()}"
