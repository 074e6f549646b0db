"""MLflow adapter: ``mlflow:./mlflow.db``, ``mlflow:sqlite:///ABS.db``, ``mlflow://HOST:PORT``, ``mlflow+https://HOST``.

Both classes talk to MLflow only through ``mlflow.tracking.MlflowClient`` (never the fluent,
process-global API). The sink runs in trackkit's delivery agent, so blocking is acceptable but
bounded: HTTP calls are made with no SDK retries and a short timeout (the agent retries with
backoff itself), set per connection (``?timeout=15&retries=0``), never in the process environment.

How the neutral model lands in MLflow (see ``docs/backends/mlflow.md``):

==================  ==============================================================
RunStarted          experiment = project (get or create); run name = name; tag
                    ``trackkit.run_id`` (the resume key); group -> tag
                    ``trackkit.group``; config -> params (flattened, keys mapped,
                    values shortened) + ``config.json`` artifact; meta ->
                    ``trackkit_meta.json`` artifact + scalar tags ``trackkit.<key>``
Metrics             ``log_batch`` (<= 1000 metrics a request), ±inf -> clamped by
                    MLflow, key remembered in a ``trackkit.inf.*`` tag
ConfigUpdate        params + ``trackkit/config_updates/<ms>-<sha>.json``
Tags                run tags (keys mapped)
Artifact            ``<kind>/<name>/v<version>/`` + ``trackkit/artifacts/...json``
StatusChange        tags ``trackkit.status``/``reason``/``status_step``/``status_change``
RunFinished         ``set_terminated`` FINISHED | FAILED | KILLED + the same tags
RunResumed          the same run (found by ``trackkit.run_id``) back to RUNNING, tag
                    ``trackkit.resumed`` + ``trackkit/resumes/<ms>-<segment>.json``
Media               image: the ``log_image(key=, step=)`` series under ``images/``;
                    histogram / text / table / audio: ``<kind>/<key>/step_<step>-<id>``
                    artifacts; captions and original keys in ``trackkit/media/`` indexes
==================  ==============================================================

Modules: ``names`` (limits, key/param/tag rules, trackkit's names in MLflow), ``connection``
(tracking URI, options, client, sqlite lock, errors), ``transport`` (the HTTP store and artifact
repositories of a connection to a server; imports mlflow), ``batches`` (``log_batch`` packing),
``media`` (the media layout, its writer and finder), ``sink``, ``reader``. Importing this package does
not import mlflow.
"""

from ...backend import shorten
from .connection import DEFAULT_HTTP_RETRIES, DEFAULT_HTTP_TIMEOUT_S, HttpOptions
from .names import (
    BATCH_BYTES,
    BATCH_ENTITIES,
    BATCH_METRICS,
    KEY_CHARS,
    MAX_KEY_LENGTH,
    MAX_PARAM_LENGTH,
    MAX_TAG_LENGTH,
    T_KEY,
    mlflow_key,
    tag_digest,
)
from .reader import MlflowReader
from .sink import MlflowSink

__all__ = [
    "BATCH_BYTES",
    "BATCH_ENTITIES",
    "BATCH_METRICS",
    "DEFAULT_HTTP_RETRIES",
    "DEFAULT_HTTP_TIMEOUT_S",
    "KEY_CHARS",
    "MAX_KEY_LENGTH",
    "MAX_PARAM_LENGTH",
    "MAX_TAG_LENGTH",
    "T_KEY",
    "HttpOptions",
    "MlflowReader",
    "MlflowSink",
    "mlflow_key",
    "shorten",
    "tag_digest",
]
