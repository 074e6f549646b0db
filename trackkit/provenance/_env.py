"""The environment pillar (interpreter, machine, torch/CUDA, packages) and the invocation record.

Standard library only. torch is consulted only when the user already imported it
(``sys.modules``); otherwise its version comes from the installed metadata.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from ._secrets import looks_like_secret, redact_argv, redact_text, strip_url_credentials

__all__ = ["ENV_ALLOWLIST", "KEY_PACKAGES", "capture_environment", "capture_invocation", "requirements_txt"]

#: distributions whose versions go into the small record (those installed)
KEY_PACKAGES: tuple[str, ...] = (
    "torch",
    "torchvision",
    "numpy",
    "tensorboard",
    "wandb",
    "mlflow",
    "pytorch-lightning",
    "lightning",
    "transformers",
    "accelerate",
    "datasets",
    "jax",
    "scikit-learn",
    "trackkit",
)

#: the only environment variables ever recorded (never the environment wholesale)
ENV_ALLOWLIST: tuple[str, ...] = (
    "CUDA_VISIBLE_DEVICES",
    "CUBLAS_WORKSPACE_CONFIG",
    "PYTHONHASHSEED",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NAME",
    "SLURM_JOB_NODELIST",
    "SLURM_NODELIST",
    "SLURM_NTASKS",
    "SLURM_PROCID",
)

_NVIDIA_SMI_TIMEOUT_S = 5.0


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _iter_dist_dirs() -> dict[str, tuple[str, str, str]]:
    """``{normalized name: (name, version, dist-info path)}`` from ``*.dist-info`` folder names on sys.path.

    Reading folder names is ~50x cheaper than parsing every METADATA file (``importlib.metadata``);
    the first entry on sys.path wins, as it does for imports.
    """
    found: dict[str, tuple[str, str, str]] = {}
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for fname in names:
            if fname.endswith(".dist-info"):
                stem = fname[: -len(".dist-info")]
            elif fname.endswith(".egg-info"):
                stem = fname[: -len(".egg-info")]
            else:
                continue
            name, sep, version = stem.partition("-")
            if not sep:
                continue
            version = version.split("-py", 1)[0]
            key = _normalize(name)
            if key not in found:
                found[key] = (name.replace("_", "-"), version, os.path.join(entry, fname))
    return found


def _direct_url(dist_path: str) -> str | None:
    """A requirement line for a VCS/editable/local install, credentials stripped; ``None`` for an index install."""
    path = os.path.join(dist_path, "direct_url.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError):
        return None
    url = strip_url_credentials(str(info.get("url", "")))
    vcs = info.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs"):
        return f"{vcs['vcs']}+{url}@{vcs.get('commit_id', '')}"
    dir_info = info.get("dir_info")
    if isinstance(dir_info, dict) and dir_info.get("editable"):
        return f"editable {url}"
    return url or None


def requirements_txt(extra_patterns: Sequence[re.Pattern[str]] = ()) -> tuple[str, int]:
    """The full installed-package list, ``name==version`` sorted; returns ``(text, count)``.

    VCS installs are written ``name @ git+URL@commit``; editable and local installs keep
    ``name==version`` with the source as a comment (it cannot be installed from the index).
    """
    lines = []
    for _, (name, version, path) in sorted(_iter_dist_dirs().items()):
        src = _direct_url(path)
        if src and not src.startswith(("editable ", "file:")) and "+" in src.split(":", 1)[0]:
            lines.append(f"{name} @ {src}")
        elif src:
            lines.append(f"{name}=={version}  # {src}")
        else:
            lines.append(f"{name}=={version}")
    header = f"# captured by trackkit from {sys.executable} (python {platform.python_version()})\n"
    text, _ = redact_text(header + "\n".join(lines) + "\n", extra_patterns, assignments=False)
    return text, len(lines)


def _key_versions(dists: dict[str, tuple[str, str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pkg in KEY_PACKAGES:
        hit = dists.get(_normalize(pkg))
        if hit is not None:
            out[pkg] = hit[1]
    return out


def _nvidia_smi() -> list[dict[str, str]] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        proc = subprocess.run(
            [exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            timeout=_NVIDIA_SMI_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    gpus = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            gpus.append({"name": parts[0], "memory": parts[1], "driver": parts[2]})
    return gpus


def _torch_info(torch: Any) -> dict[str, Any]:
    """Versions and devices from a torch the user already imported. Does not initialise CUDA itself."""
    info: dict[str, Any] = {"version": str(getattr(torch, "__version__", "?"))}
    version = getattr(torch, "version", None)
    info["cuda"] = getattr(version, "cuda", None)
    info["hip"] = getattr(version, "hip", None)
    try:
        cudnn = torch.backends.cudnn
        info["cudnn"] = cudnn.version() if cudnn.is_available() else None
    except Exception as exc:  # pragma: no cover - exotic builds
        info["cudnn"] = f"error: {exc}"
    try:
        available = bool(torch.cuda.is_available())
        info["cuda_available"] = available
        if available:
            info["gpu_count"] = int(torch.cuda.device_count())
            # naming devices through torch initialises CUDA; only do it if the user already did
            if torch.cuda.is_initialized():
                info["gpus"] = [str(torch.cuda.get_device_name(i)) for i in range(info["gpu_count"])]
    except Exception as exc:
        info["cuda_error"] = str(exc)
    try:
        info["deterministic_algorithms"] = bool(torch.are_deterministic_algorithms_enabled())
        info["cudnn_deterministic"] = bool(torch.backends.cudnn.deterministic)
        info["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
    except Exception:
        pass
    try:
        info["num_threads"] = int(torch.get_num_threads())
    except Exception:
        pass
    mps = getattr(getattr(torch, "backends", None), "mps", None)
    try:
        if mps is not None and mps.is_available():
            info["mps_available"] = True
    except Exception:
        pass
    return info


def _env_vars() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ENV_ALLOWLIST:
        value = os.environ.get(name)
        if value is None:
            continue
        out[name] = "***REDACTED***" if looks_like_secret(value) else value
    return out


def capture_environment(
    extra_patterns: Sequence[re.Pattern[str]] = (), *, packages: bool = True, gpus: bool = True
) -> tuple[dict[str, Any], dict[str, str]]:
    """Return ``(meta, files)`` for the environment pillar; ``files`` holds ``requirements.txt``."""
    meta: dict[str, Any] = {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "prefix": sys.prefix,
            "in_virtualenv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
        },
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "platform": platform.platform(),
        },
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
    }
    try:
        meta["cpu_affinity"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    dists = _iter_dist_dirs()
    meta["packages"] = _key_versions(dists)
    torch = sys.modules.get("torch")
    if torch is not None:
        meta["torch"] = _torch_info(torch)
    elif "torch" in meta["packages"]:
        meta["torch"] = {"version": meta["packages"]["torch"], "imported": False}
    if gpus and not (torch is not None and "gpus" in meta.get("torch", {})):
        smi = _nvidia_smi()
        if smi is not None:
            meta["gpus"] = smi
            meta["gpu_count"] = len(smi)
    if "torch" in meta and "gpus" in meta["torch"]:
        meta["gpus"] = [{"name": n} for n in meta["torch"]["gpus"]]
        meta["gpu_count"] = len(meta["gpus"])
    meta.setdefault("gpu_count", meta.get("torch", {}).get("gpu_count", 0))
    meta["env_vars"] = _env_vars()
    files: dict[str, str] = {}
    if packages:
        text, count = requirements_txt(extra_patterns)
        files["requirements.txt"] = text
        meta["requirements"] = {"file": "requirements.txt", "count": count}
    return meta, files


def _entry_point() -> dict[str, Any]:
    out: dict[str, Any] = {}
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and getattr(spec, "name", None):
        out["module"] = str(spec.name)
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 and argv0 not in ("-c", "-m") and os.path.exists(argv0):
        out["script"] = os.path.abspath(argv0)
    elif getattr(main, "__file__", None):
        out["script"] = os.path.abspath(str(getattr(main, "__file__", "")))
    else:
        out["script"] = None  # interactive session, notebook or -c
    return out


def capture_invocation(extra_patterns: Sequence[re.Pattern[str]] = (), cwd: str | None = None) -> dict[str, Any]:
    """Command line (secrets redacted), entry script, working directory, user, start time, pid."""
    import shlex

    argv = redact_argv(list(sys.argv), extra_patterns)
    meta: dict[str, Any] = {"argv": argv}
    orig = getattr(sys, "orig_argv", None)
    if orig:
        red = redact_argv(list(orig), extra_patterns)
        meta["orig_argv"] = red
        meta["command"] = shlex.join(red)
    else:
        meta["command"] = shlex.join([sys.executable, *argv])
    meta.update(_entry_point())
    try:
        meta["cwd"] = cwd or os.getcwd()
    except OSError as exc:
        meta["cwd"] = None
        meta["cwd_error"] = str(exc)
    try:
        meta["user"] = getpass.getuser()
    except Exception:  # no passwd entry, no LOGNAME: containers
        meta["user"] = None
    now = _dt.datetime.now(_dt.timezone.utc)
    meta["start_time"] = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    meta["start_unix"] = now.timestamp()
    meta["pid"] = os.getpid()
    meta["executable"] = sys.executable
    return meta
