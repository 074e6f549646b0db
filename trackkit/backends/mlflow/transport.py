"""The HTTP side of a connection to a tracking server, with this connection's own timeout and retries.

MLflow's REST store and HTTP artifact repositories take ``MLFLOW_HTTP_REQUEST_TIMEOUT`` /
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` from the process environment at each request unless the
call passes ``timeout=`` / ``max_retries=`` to ``http_request``: one setting per process. The
client built here has a store and artifact repositories of its own that pass this connection's
values with every request, so two connections in one process (two servers in one agent, a reader
beside a sink) keep theirs, and nothing is written to ``os.environ``.

Imported only when a connection to a server is made (it imports mlflow). Written against
MLflow 3.x: ``RestStore._call_endpoint``, ``TrackingServiceClient.store`` /
``_get_artifact_repo`` / ``_log_url``, ``MlflowClient._tracking_client`` and
``HttpArtifactRepository``'s request methods.
"""

# MLflow's functions are mostly unannotated: calling them is what this module is for
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import functools
import json
import os
import posixpath
from typing import Any

from mlflow.entities import FileInfo
from mlflow.store.artifact.artifact_repo import ArtifactRepository, verify_artifact_path
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository
from mlflow.store.tracking.rest_store import RestStore
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.client import TrackingServiceClient
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.mime_type_utils import _guess_mime_type
from mlflow.utils.proto_json_utils import parse_dict
from mlflow.utils.request_utils import augmented_raise_for_status
from mlflow.utils.rest_utils import MlflowHostCreds, http_request, verify_rest_response
from mlflow.utils.uri import validate_path_is_safe

#: artifact repositories a client keeps (one per run it touched)
_MAX_REPOS = 256


class _Http:
    """This connection's ``timeout`` / ``max_retries``, passed with each request."""

    http_timeout: int
    http_retries: int

    def request(self, host_creds: MlflowHostCreds, endpoint: str, method: str, **kwargs: Any) -> Any:
        return http_request(
            host_creds, endpoint, method, timeout=self.http_timeout, max_retries=self.http_retries, **kwargs
        )


class ConnectionStore(_Http, RestStore):  # type: ignore[misc]  # MLflow's own mixins disagree
    """MLflow's REST store; every request with this connection's timeout and retries."""

    def __init__(self, uri: str, *, timeout: int, retries: int) -> None:
        super().__init__(functools.partial(get_default_host_creds, uri))
        self.http_timeout, self.http_retries = timeout, retries

    def _call_endpoint(
        self,
        api: Any,
        json_body: str | None = None,
        endpoint: str | None = None,
        retry_timeout_seconds: int | None = None,
        response_proto: Any = None,
    ) -> Any:
        # RestStore._call_endpoint + rest_utils.call_endpoint, with timeout= and max_retries=
        routes = self._V3_METHOD_TO_INFO if api in self._V3_APIS else self._METHOD_TO_INFO
        self._validate_workspace_support_if_specified()
        path, method = routes[api]
        endpoint = endpoint or path
        body = json.loads(json_body) if json_body is not None else None
        kwargs: dict[str, Any] = {"params" if method == "GET" else "json": body}
        if retry_timeout_seconds is not None:
            kwargs["retry_timeout_seconds"] = retry_timeout_seconds
        response = verify_rest_response(self.request(self.get_host_creds(), endpoint, method, **kwargs), endpoint)
        proto = response_proto or api.Response()
        if response.status_code != 204:
            parse_dict(js_dict=json.loads(response.text), message=proto)
        return proto


class TimedHttpArtifacts(_Http, HttpArtifactRepository):
    """An HTTP artifact repository (``mlflow-artifacts:`` proxied by the server, ``http(s)://``)
    whose own requests carry this connection's timeout and retries. Presigned multipart transfers
    (when the server or ``MLFLOW_ENABLE_PROXY_MULTIPART_*`` turns them on) stay MLflow's.
    ``http_timeout`` / ``http_retries`` are set by the client that makes it."""

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        if self._should_multipart_upload(local_file):
            super().log_artifact(local_file, artifact_path)
            return
        verify_artifact_path(artifact_path)
        name = os.path.basename(local_file)
        endpoint = posixpath.join("/", *((artifact_path, name) if artifact_path else (name,)))
        with open(local_file, "rb") as fh:
            resp = self.request(
                self._host_creds, endpoint, "PUT", data=fh, extra_headers={"Content-Type": _guess_mime_type(name)}
            )
            augmented_raise_for_status(resp)

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        endpoint = "/mlflow-artifacts/artifacts"
        url, tail = self.artifact_uri.split(endpoint, maxsplit=1)
        root = tail.lstrip("/")
        params = {"path": posixpath.join(root, path) if path else root}
        resp = self.request(get_default_host_creds(url), endpoint, "GET", params=params)
        augmented_raise_for_status(resp)
        infos = []
        for f in resp.json().get("files", []):
            rel = validate_path_is_safe(f["path"])
            size = int(f["file_size"]) if "file_size" in f else None
            infos.append(FileInfo(posixpath.join(path, rel) if path else rel, f["is_dir"], size))
        # a path that names one file lists as nothing (MLflow's list_artifacts contract)
        if len(infos) == 1 and not infos[0].is_dir and path is not None:
            if infos[0].path == posixpath.join(path, os.path.basename(path)):
                return []
        return sorted(infos, key=lambda f: f.path)

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        multipart = getattr(self, "_is_multipart_download_enabled", None)
        if multipart is not None and multipart():
            super()._download_file(remote_file_path, local_path)
            return
        resp = self.request(self._host_creds, posixpath.join("/", remote_file_path), "GET", stream=True)
        augmented_raise_for_status(resp)
        with open(local_path, "wb") as fh:
            for chunk in resp.iter_content(chunk_size=1024 * 1024):
                fh.write(chunk)


@functools.cache
def _timed(cls: type[HttpArtifactRepository]) -> type[TimedHttpArtifacts]:
    """``cls`` (``HttpArtifactRepository`` or a subclass, e.g. ``MlflowArtifactsRepository``) with
    :class:`TimedHttpArtifacts` in front of it."""
    if issubclass(cls, TimedHttpArtifacts):
        return cls
    return type(f"Timed{cls.__name__}", (TimedHttpArtifacts, cls), {})


class ConnectionTracking(TrackingServiceClient):
    """MLflow's tracking client over a :class:`ConnectionStore` and artifact repositories of this
    connection (MLflow's own cache them per process, by run id, whatever client made them)."""

    def __init__(self, uri: str, *, timeout: int, retries: int, quiet: bool) -> None:
        self._store = ConnectionStore(uri, timeout=timeout, retries=retries)
        self._repos: dict[str, ArtifactRepository] = {}
        self._quiet = quiet
        super().__init__(uri)

    @property
    def store(self) -> ConnectionStore:
        return self._store

    def _get_artifact_repo(self, resource_id: str, *, resource: Any = "run") -> ArtifactRepository:
        if resource != "run":
            return super()._get_artifact_repo(resource_id, resource=resource)
        repo = self._repos.get(resource_id)
        if repo is None:
            uri = self.store.get_run(resource_id).info.artifact_uri
            repo = get_artifact_repository(uri, tracking_uri=self.tracking_uri)
            if isinstance(repo, HttpArtifactRepository):
                repo = _timed(type(repo))(uri, tracking_uri=self.tracking_uri)
                repo.http_timeout, repo.http_retries = self.store.http_timeout, self.store.http_retries
            if len(self._repos) >= _MAX_REPOS:
                self._repos.pop(next(iter(self._repos)))
            self._repos[resource_id] = repo
        return repo

    # MLflow lists and downloads through a ``runs:/`` URI, which makes a store of its own (the
    # process's settings): these go through this connection's repository of the run instead
    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return list(self._get_artifact_repo(run_id).list_artifacts(path))

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        return str(self._get_artifact_repo(run_id).download_artifacts(path, dst_path))

    def _log_url(self, run_id: str) -> None:
        if not self._quiet:
            super()._log_url(run_id)


class ConnectionClient(MlflowClient):
    """``MlflowClient`` whose every request to the server carries this connection's timeout and retries."""

    def __init__(self, uri: str, *, timeout: int, retries: int, quiet: bool) -> None:
        super().__init__(tracking_uri=uri)
        self._tracking_client = ConnectionTracking(uri, timeout=timeout, retries=retries, quiet=quiet)

    def metric_history_page(
        self, run_id: str, key: str, max_results: int, page_token: str | None
    ) -> tuple[list[Any], str | None]:
        """One page of a metric's history (``GetMetricHistory`` with ``max_results`` / ``page_token``)
        and the next page's token (None: the last page)."""
        got = self._tracking_client.store.get_metric_history(run_id, key, max_results=max_results,
                                                             page_token=page_token)
        return list(got), getattr(got, "token", None) or None
