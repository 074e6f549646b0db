"""What an MLflow run's tags, params, inputs and status mean in the neutral model: the rules the reader
applies to any run, trackkit's or one MLflow's fluent API / autolog wrote (docs/backends/mlflow.md,
"Runs MLflow wrote")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from ...events import Artifact, Status, StatusChange
from .names import (
    FROM_MLFLOW,
    RESERVED_TAG_PREFIXES,
    T_INF,
    T_KEY,
    T_STATUS,
    T_STATUS_CHANGE,
    mlflow_key,
    unstorable,
    user_tag_key,
    value_back,
)

#: MLflow's system tags the reader maps to a field of its own (not kept in ``meta["mlflow"]["tags"]``)
T_RUN_NAME = "mlflow.runName"
T_PARENT_RUN = "mlflow.parentRunId"
#: system tags the sink never writes back from ``meta["mlflow"]["tags"]``: MLflow's bookkeeping of the
#: run itself (the name, the parent, the media and model lists the copy makes anew)
NOT_RESTORED = (
    T_RUN_NAME, T_PARENT_RUN, "mlflow.loggedArtifacts", "mlflow.loggedImages", "mlflow.log-model.history",
)  # fmt: skip
#: ``mlflow.source.git.*`` -> ``meta["git"]`` (the names of trackkit's provenance)
GIT_TAGS = {"mlflow.source.git.commit": "commit", "mlflow.source.git.branch": "branch",
            "mlflow.source.git.repoURL": "remote"}  # fmt: skip


def key_map(tags: Mapping[str, str]) -> dict[str, str]:
    """mapped key -> original key, from the ``trackkit.key.*`` tags."""
    out: dict[str, str] = {}
    for original in (unstorable(v) for k, v in tags.items() if k.startswith(T_KEY)):
        out[mlflow_key(original)] = original
        if original.startswith(RESERVED_TAG_PREFIXES):
            out[user_tag_key(original)] = original
    return out


def inf_keys(tags: Mapping[str, str]) -> set[str]:
    return {v for k, v in tags.items() if k.startswith(T_INF)}


def system_meta(tags: Mapping[str, str], inputs: Any) -> dict[str, Any]:
    """``RunStarted.meta`` of what MLflow itself recorded: ``meta["mlflow"]["tags"]`` (every ``mlflow.*``
    tag but the run name and parent, which have fields of their own), ``meta["git"]`` (commit, branch,
    remote from ``mlflow.source.git.*``) and ``meta["mlflow"]["datasets"]`` (``log_input``)."""
    system = {k: v for k, v in tags.items() if k.startswith("mlflow.") and k not in (T_RUN_NAME, T_PARENT_RUN)}
    out: dict[str, Any] = {}
    mlf: dict[str, Any] = {}
    if system:
        mlf["tags"] = dict(sorted(system.items()))
    git = {name: tags[k] for k, name in GIT_TAGS.items() if tags.get(k)}
    if git:
        out["git"] = git
    datasets = datasets_of(inputs)
    if datasets:
        mlf["datasets"] = datasets
    if mlf:
        out["mlflow"] = mlf
    return out


def datasets_of(inputs: Any) -> list[dict[str, Any]]:
    """The run's ``log_input`` datasets: name, digest, source type, source (parsed JSON where it is),
    schema and profile (JSON text as MLflow keeps them) and the input tags (``mlflow.data.context``)."""
    out: list[dict[str, Any]] = []
    for di in getattr(inputs, "dataset_inputs", None) or []:
        ds = di.dataset
        rec: dict[str, Any] = {
            "name": ds.name, "digest": ds.digest, "source_type": ds.source_type, "source": _json_or_text(ds.source),
        }  # fmt: skip
        if getattr(ds, "schema", None):
            rec["schema"] = ds.schema
        if getattr(ds, "profile", None):
            rec["profile"] = ds.profile
        itags = {t.key: t.value for t in (di.tags or [])}
        if itags:
            rec["tags"] = itags
            if "mlflow.data.context" in itags:
                rec["context"] = itags["mlflow.data.context"]
        out.append(rec)
    return out


def dataset_entities(datasets: Any) -> list[Any]:
    """``meta["mlflow"]["datasets"]`` back as ``mlflow.entities.DatasetInput`` for ``log_inputs``."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    out = []
    for rec in datasets if isinstance(datasets, list) else []:
        if not isinstance(rec, dict) or not rec.get("name") or not rec.get("digest"):
            continue
        src = rec.get("source", "")
        ds = Dataset(
            name=str(rec["name"]), digest=str(rec["digest"]), source_type=str(rec.get("source_type", "")),
            source=src if isinstance(src, str) else json.dumps(src), schema=rec.get("schema"),
            profile=rec.get("profile"),
        )  # fmt: skip
        got = rec.get("tags")
        tags: dict[str, Any] = got if isinstance(got, dict) else {}
        out.append(DatasetInput(ds, [InputTag(str(k), str(v)) for k, v in tags.items()]))
    return out


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def status_of(run: Any, tags: Mapping[str, str]) -> Status:
    text = tags.get(T_STATUS)
    if text in {s.value for s in Status}:
        status = Status(text)
        # a run terminated natively after our tag said running (e.g. by hand in the UI)
        if status is Status.RUNNING and run.info.status in ("FINISHED", "FAILED", "KILLED"):
            return FROM_MLFLOW[run.info.status]
        return status
    return FROM_MLFLOW.get(run.info.status, Status.RUNNING)


def status_change(tags: Mapping[str, str]) -> StatusChange | None:
    """The last status change, from the ``trackkit.status_change`` tag."""
    rec = value_back(tags[T_STATUS_CHANGE]) if T_STATUS_CHANGE in tags else None
    if not (isinstance(rec, dict) and rec.get("status") in {s.value for s in Status}):
        return None
    step = rec.get("step")
    return StatusChange(
        status=Status(rec["status"]),
        reason=str(rec.get("reason", "")),
        step=int(step) if isinstance(step, (int, float)) else None,
        time=float(rec.get("time") or 0.0),
        details=rec.get("details") or {},
    )


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        ok = all(parts)
        if ok:
            for p in parts[:-1]:
                nxt = node.setdefault(p, {})
                if not isinstance(nxt, dict):
                    ok = False
                    break
                node = nxt
        if ok and not isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = value
        else:  # cannot nest without clobbering: keep it flat
            out[key] = value
    return out


def merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = dict(v) if isinstance(v, Mapping) else v
    return out


def store_uri(base: str, rel: str) -> str:
    """Where the run's artifact store keeps ``rel``: ``base`` (the run's ``artifact_uri``) + ``/rel``,
    a plain path for a local store (``file://`` dropped), the URI for any other (``mlflow-artifacts:/...``)."""
    uri = f"{base.rstrip('/')}/{rel}" if base else rel
    return unquote(urlsplit(uri).path) if uri.startswith("file://") else uri


def artifact_event(rec: Mapping[str, Any], base: str, local: str | None = None) -> Artifact:
    """An ``Artifact`` from trackkit's record of it; ``local``: the file downloaded (else the store's
    URI); ``location`` is the store's URI of it either way (``trackkit show`` prints it)."""
    uri = store_uri(base, str(rec.get("artifact_path", "")))
    return Artifact(
        location=uri,
        path=local or uri,
        name=str(rec.get("name", "")),
        kind=str(rec.get("kind", "")),
        sha256=str(rec.get("sha256", "")),
        size=int(rec.get("size", 0)),
        version=int(rec.get("version", 0)),
        aliases=tuple(rec.get("aliases") or ()),
        metadata=rec.get("metadata") or {},
        source=str(rec.get("source", "")),
        time=float(rec.get("time", 0.0)),
    )
