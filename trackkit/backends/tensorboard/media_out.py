"""Media values as TensorBoard summaries (docs/backends/tensorboard.md#media).

Each canonical ``Media`` event becomes ONE event-file event holding two summary values: the
native one under the media key (``Summary.Image``, ``HistogramProto``, a text-plugin string
tensor, ``Summary.Audio``) and a JSON record under ``trackkit/media`` with what the native
form cannot hold: the caption of that step (TensorBoard keeps one description per tag), the
event's meta, the typed table, the histogram's exact edges and statistics.
"""

from __future__ import annotations

import io
import json
import wave
from typing import Any

from ...backend import image_meta
from ...events import Media
from .layout import TEXT_MEDIA, dumps

__all__ = ["LINSPACE_LIMIT", "cell_text", "image_channels", "linspace", "media_summary", "string_tensor",
           "text_metadata"]

#: counts up to this are exact in TensorBoard's float32 histogram tensors
LINSPACE_LIMIT = 2 ** 24


def linspace(lo: float, hi: float, n: int) -> list[float]:
    """``n + 1`` equal-width edges from ``lo`` to ``hi``, computed as numpy.linspace does (``i * step + lo``,
    the last one ``hi``): the edges of ``numpy.histogram`` and of trackkit's binning, bit for bit."""
    step = (hi - lo) / n
    return [i * step + lo for i in range(n)] + [hi]


def image_channels(data: bytes) -> int:
    """The channels PIL reports for PNG/JPEG/GIF bytes (0: unknown), read from the header."""
    return int(image_meta(data).get("channels", 0))


def string_tensor(cells: list[bytes], shape: list[int]) -> Any:
    """A DT_STRING ``TensorProto`` (no numpy, the bytes exactly as given)."""
    from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2

    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in shape]
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims),
                                  string_val=cells)


def text_metadata(description: str = "") -> Any:
    from tensorboard.plugins.text import metadata

    return metadata.create_summary_metadata(display_name=None, description=description or None)


def cell_text(cell: Any) -> str:
    """A table cell as the text TensorBoard shows: strings as they are, None empty, others as JSON."""
    if isinstance(cell, str):
        return cell
    if cell is None:
        return ""
    return json.dumps(cell)


def media_summary(ev: Media) -> Any:
    """The ``Summary`` of one canonical media event: the native value plus its ``trackkit/media`` record.

    A payload that cannot be read or parsed writes only the record, with ``error`` naming the
    cause: delivery goes on (a sink that raised would stop every later event of the run)."""
    from tensorboard.compat.proto import summary_pb2

    record: dict[str, Any] = {"key": ev.key, "kind": ev.kind, "caption": ev.caption, "sha256": ev.sha256,
                              "format": ev.format, "meta": dict(ev.meta)}
    values = []
    try:
        data = ev.read_bytes()
        values.append(_native(ev, data, record, summary_pb2))
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, wave.Error) as exc:
        record["error"] = (f"{ev.kind} {ev.key!r} at step {ev.step}: not written to TensorBoard "
                           f"({type(exc).__name__}: {exc}); the file was {ev.path}")
    record_value = summary_pb2.Summary.Value(
        tag=TEXT_MEDIA, metadata=text_metadata(), tensor=string_tensor([dumps(record).encode("utf-8")], [])
    )
    return summary_pb2.Summary(value=[*values, record_value])


def _native(ev: Media, data: bytes, record: dict[str, Any], pb: Any) -> Any:
    V = pb.Summary.Value
    desc = pb.SummaryMetadata(summary_description=ev.caption) if ev.caption else None
    if ev.kind == "image":
        head = image_meta(data)
        if not head:
            raise ValueError(f"not a PNG, JPEG or GIF image ({ev.format})")
        channels = image_channels(data) or int(ev.meta.get("channels") or 3)
        img = pb.Summary.Image(height=int(head["height"]), width=int(head["width"]), colorspace=channels,
                               encoded_image_string=data)
        return V(tag=ev.key, image=img, metadata=desc)
    if ev.kind == "histogram":
        return V(tag=ev.key, histo=_histogram(json.loads(data), record), metadata=desc)
    if ev.kind == "text":
        return V(tag=ev.key, metadata=text_metadata(ev.caption), tensor=string_tensor([data], []))
    if ev.kind == "table":
        table = json.loads(data)
        columns, rows = [str(c) for c in table["columns"]], table["rows"]
        cells = [c.encode("utf-8", "surrogatepass") for c in columns]
        for row in rows:
            if len(row) != len(columns):
                raise ValueError(f"a row has {len(row)} cells, the table {len(columns)} columns")
            cells.extend(cell_text(c).encode("utf-8", "surrogatepass") for c in row)
        record["table"] = data.decode("utf-8", "surrogatepass")  # the typed table, byte for byte
        return V(tag=ev.key, metadata=text_metadata(ev.caption),
                 tensor=string_tensor(cells, [len(rows) + 1, len(columns)]))
    if ev.kind == "audio":
        with wave.open(io.BytesIO(data)) as w:
            rate, channels, frames = w.getframerate(), w.getnchannels(), w.getnframes()
        audio = pb.Summary.Audio(sample_rate=float(rate), num_channels=channels, length_frames=frames,
                                 encoded_audio_string=data, content_type="audio/wav")
        return V(tag=ev.key, audio=audio, metadata=desc)
    raise ValueError(f"unknown media kind {ev.kind!r}")


def _histogram(h: dict[str, Any], record: dict[str, Any]) -> Any:
    """``HistogramProto`` with the true edges (``min``/``max`` are the outer edges, so TensorBoard's
    buckets are the logged ones); the record keeps what the float32 read-back loses."""
    from tensorboard.compat.proto import summary_pb2

    counts, edges = list(h["counts"]), [float(e) for e in h["edges"]]
    n = len(counts)
    if n == 0 or len(edges) != n + 1:
        raise ValueError(f"{n} counts need {n + 1} edges, got {len(edges)}")
    extra: dict[str, Any] = {"bins": n}
    lead = next((i for i, c in enumerate(counts) if c > 0), n)
    if lead:
        extra["lead"] = lead  # TensorBoard drops empty buckets at both ends
    extra.update({"linspace": [edges[0], edges[-1]]} if linspace(edges[0], edges[-1], n) == edges else {"edges": edges})
    if not all(isinstance(c, int) and 0 <= c <= LINSPACE_LIMIT for c in counts):
        extra["counts"] = counts  # float32 would round them
    extra["stats"] = {k: h[k] for k in ("min", "max", "num", "sum", "sum_squares", "nonfinite") if k in h}
    record["histogram"] = extra
    return summary_pb2.HistogramProto(
        min=edges[0], max=edges[-1], num=float(h.get("num", sum(counts))), sum=float(h.get("sum", 0.0)),
        sum_squares=float(h.get("sum_squares", 0.0)), bucket_limit=edges[1:], bucket=[float(c) for c in counts],
    )
