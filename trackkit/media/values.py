"""The media values a user logs (``trackkit.Image`` ...) and what the trainer does with them.

In the training thread a value only becomes a *payload*: its raw bytes (an array's buffer, a
figure's pickle, a table's JSON) plus a few facts (shape, dtype, caption). No PNG encoding, no
histogram binning, no SDK call: the delivery agent turns payloads into the delivered formats
(``media.encode``). Bad values raise ``MediaError`` with one line naming the fix; ``Run.log``
turns it into a warning and goes on with the other values. See docs/media.md.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["Audio", "Figure", "Histogram", "Image", "MediaError", "MediaValue", "Options", "Payload", "Table", "Text"]


class MediaError(ValueError):
    """A media value that cannot be logged; the message names the fix."""


@dataclass(frozen=True)
class Options:
    """The run's media settings (``media_max_image_px``, ``media_max_bytes``)."""

    max_image_px: int = 1024
    max_bytes: int = 16 * 1024 * 1024


@dataclass
class Payload:
    format: str
    data: bytes
    meta: dict[str, Any] = field(default_factory=dict)
    #: said once per key when the value was reduced (names the setting)
    note: str = ""


class MediaValue:
    """Base of the media types; ``run.log({"key": trackkit.Image(...)})``."""

    kind: ClassVar[str] = ""
    caption: str = ""

    def payload(self, key: str, opts: Options) -> Payload:
        raise NotImplementedError

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"trackkit.{name}({self.caption!r})" if self.caption else f"trackkit.{name}()"


# ---------------------------------------------------------------- helpers


def _np() -> Any:
    import numpy

    return numpy


def _to_numpy(data: Any, what: str) -> Any:
    """An array from a numpy array, a torch tensor (moved to the CPU), a PIL image or a nested list."""
    np = _np()
    if isinstance(data, np.ndarray):
        return data
    if hasattr(data, "detach") and hasattr(data, "cpu"):  # a torch tensor
        t = data.detach()
        if str(getattr(t, "dtype", "")) in ("torch.bfloat16", "torch.float16"):
            t = t.float()
        return t.cpu().numpy()
    try:
        return np.asarray(data)
    except Exception as exc:
        raise MediaError(f"{what}: {type(data).__name__} is not an array ({exc}). Fix: pass a numpy array, a "
                         "torch tensor, a PIL image or a path") from None


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"GIF87a", "gif"), (b"GIF89a", "gif"))


def image_format(head: bytes) -> str | None:
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    return None


def _read_file(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise MediaError(f"{what}: cannot read {path!r} ({exc.strerror or exc}). Fix: pass an existing file") from None


# ---------------------------------------------------------------- the types


class Image(MediaValue):
    """An image: a numpy array or torch tensor (HW, HWC or CHW; uint8 0-255 or float 0-1), a PIL
    image or the path of a PNG/JPEG/GIF file. ``layout="CHW"``/``"HWC"`` settles an ambiguous
    shape (default: HWC when the last axis has 1, 3 or 4 channels, else CHW)."""

    kind = "image"

    def __init__(self, data: Any, caption: str = "", *, layout: str = "auto") -> None:
        self.data, self.caption, self.layout = data, str(caption or ""), layout

    def payload(self, key: str, opts: Options) -> Payload:
        data = self.data
        np = _np()
        if type(data) is np.ndarray:  # the common case first: no other checks
            return self._from_array(data, f"Image {key!r}", opts)
        what = f"Image {key!r}"
        if isinstance(data, (str, os.PathLike)):
            return self._from_file(os.fspath(data), what, opts)
        if type(data).__module__.startswith("PIL."):
            if data.mode not in ("L", "RGB", "RGBA"):
                data = data.convert("RGBA" if "A" in data.getbands() else "RGB")
        arr = _to_numpy(data, what)
        return self._from_array(arr, what, opts)

    def _from_file(self, path: str, what: str, opts: Options) -> Payload:
        data = _read_file(path, what)
        fmt = image_format(data[:8])
        if fmt is None:
            raise MediaError(f"{what}: {path!r} is not a PNG, JPEG or GIF file. Fix: pass one of those, or an array")
        import io

        from PIL import Image as PILImage  # reads the header only

        try:
            img = PILImage.open(io.BytesIO(data))
            w, h = img.size
        except Exception as exc:
            raise MediaError(f"{what}: {path!r} cannot be read as an image ({exc}). Fix: pass a valid file") from None
        if opts.max_image_px and max(w, h) > opts.max_image_px:
            img.load()
            return self._from_array(_np().asarray(img.convert("RGBA" if "A" in img.getbands() else "RGB")), what, opts)
        return Payload(fmt, data, {"width": w, "height": h, "source": os.path.abspath(path)})

    def _from_array(self, arr: Any, what: str, opts: Options) -> Payload:
        dtype = arr.dtype
        if dtype.kind not in "buif":
            raise MediaError(f"{what}: dtype {dtype} is not an image dtype. Fix: pass uint8 (0-255) or float (0-1)")
        shape = arr.shape
        ndim = len(shape)
        if ndim == 3:
            if self.layout != "auto" and self.layout not in ("CHW", "HWC"):
                raise MediaError(f"{what}: layout={self.layout!r} is not one of 'auto', 'HWC', 'CHW'. Fix: pass one")
            if self.layout == "CHW" or (self.layout == "auto" and shape[-1] not in (1, 3, 4) and shape[0] in (1, 3, 4)):
                arr = arr.transpose(1, 2, 0)
        elif ndim == 2:
            arr = arr[:, :, None]
        else:
            hint = " (a batch? log one image, e.g. batch[0])" if ndim == 4 else ""
            raise MediaError(f"{what}: shape {tuple(shape)} is not an image{hint}. Fix: pass (H, W), (H, W, C) or "
                             "(C, H, W) with C in 1, 3, 4")
        h, w, c = arr.shape
        if c not in (1, 3, 4) or h == 0 or w == 0:
            raise MediaError(f"{what}: shape {tuple(shape)} is not an image. Fix: pass (H, W), (H, W, C) or (C, H, W) "
                             "with C in 1, 3, 4 and H, W > 0")
        if dtype.kind == "f" and not _all_finite(arr):
            raise MediaError(f"{what}: the image holds NaN or inf. Fix: check the tensor, e.g. "
                             "torch.nan_to_num(x), before logging it")
        note = ""
        if opts.max_image_px and (h > opts.max_image_px or w > opts.max_image_px):
            k = math.ceil(max(h, w) / opts.max_image_px)
            arr = arr[::k, ::k]
            note = (f"{what}: {w}x{h} px is larger than media_max_image_px={opts.max_image_px}; logged reduced to "
                    f"{arr.shape[1]}x{arr.shape[0]}. Fix: set media_max_image_px (TRACKKIT_MEDIA_MAX_IMAGE_PX, 0: "
                    "never reduce) to keep more")
            h, w = arr.shape[0], arr.shape[1]
        # tobytes() writes C order whatever the strides (a CHW view, a reduced one): no extra copy
        meta = {"dtype": dtype.str, "shape": [h, w, c], "width": w, "height": h, "channels": c}
        return Payload("raw", arr.tobytes(), meta, note)


def _all_finite(arr: Any) -> bool:
    """No NaN or inf in a float array: its sum is finite (cheap) or, when the sum overflowed, every value is."""
    np = _np()
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(float(arr.sum())):
            return True
    return bool(np.isfinite(arr).all())


class Histogram(MediaValue):
    """A distribution: the values (an array or tensor, binned into ``bins`` equal bins by the agent;
    a tensor on a GPU is binned there), or precomputed ``counts`` and ``edges`` (len(counts) + 1)."""

    kind = "histogram"

    def __init__(self, values: Any = None, bins: int = 64, *, counts: Any = None, edges: Any = None,
                 caption: str = "") -> None:
        self.values, self.bins, self.counts, self.edges, self.caption = values, bins, counts, edges, str(caption or "")

    def payload(self, key: str, opts: Options) -> Payload:
        what = f"Histogram {key!r}"
        if not isinstance(self.bins, int) or isinstance(self.bins, bool) or not 1 <= self.bins <= 512:
            raise MediaError(f"{what}: bins={self.bins!r} is not a whole number from 1 to 512. Fix: e.g. bins=64")
        if self.counts is not None or self.edges is not None:
            if self.values is not None:
                raise MediaError(f"{what}: both values and counts/edges given. Fix: pass one of them")
            return Payload("json", json.dumps(binned_counts(self.counts, self.edges, what)).encode())
        if self.values is None:
            raise MediaError(f"{what}: no values. Fix: Histogram(values) or Histogram(counts=..., edges=...)")
        v = self.values
        if hasattr(v, "detach") and str(getattr(v, "device", "cpu")) != "cpu":
            return Payload("json", json.dumps(device_histogram(v, self.bins, what)).encode(), {"bins": self.bins})
        arr = _to_numpy(v, what).ravel()
        if arr.dtype.kind not in "buif":
            raise MediaError(f"{what}: dtype {arr.dtype} is not numeric. Fix: pass numbers")
        if arr.size == 0:
            raise MediaError(f"{what}: the histogram is empty (no values). Fix: log at least one value")
        if arr.dtype.kind != "f":
            arr = arr.astype("float64")
        if arr.nbytes > opts.max_bytes:  # bin here rather than write a huge payload
            np = _np()
            return Payload("json", json.dumps(bin_values(np, arr, self.bins)).encode(), {"bins": self.bins})
        arr = _np().ascontiguousarray(arr)
        return Payload("raw", arr.tobytes(), {"dtype": arr.dtype.str, "shape": [int(arr.size)], "bins": self.bins})


def binned_counts(counts: Any, edges: Any, what: str) -> dict[str, Any]:
    """The histogram JSON of precomputed counts and edges, checked."""
    np = _np()
    try:
        c = np.asarray(_to_numpy(counts, what), dtype="float64").ravel()
        e = np.asarray(_to_numpy(edges, what), dtype="float64").ravel()
    except (TypeError, ValueError) as exc:
        raise MediaError(f"{what}: counts/edges are not numbers ({exc}). Fix: pass numeric arrays") from None
    if c.size == 0:
        raise MediaError(f"{what}: the histogram is empty (no bins). Fix: pass at least one count")
    if e.size != c.size + 1:
        raise MediaError(f"{what}: {c.size} counts need {c.size + 1} edges, got {e.size}. Fix: pass len(counts) + 1 "
                         "edges (numpy.histogram returns them)")
    if not (np.isfinite(c).all() and np.isfinite(e).all()) or (c < 0).any() or (np.diff(e) < 0).any():
        raise MediaError(f"{what}: counts must be finite and >= 0, edges finite and increasing. Fix: check them")
    counts_out = [int(x) if float(x).is_integer() else float(x) for x in c.tolist()]
    return {"counts": counts_out, "edges": e.tolist(), "num": float(c.sum())}


def bin_values(np: Any, arr: Any, bins: int) -> dict[str, Any]:
    """Bin raw values: ``bins`` equal bins between the finite min and max; non-finite values are
    left out and counted (``nonfinite``)."""
    finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
    dropped = int(arr.size - finite.size)
    if finite.size == 0:
        return {"counts": [0] * bins, "edges": list(np.linspace(0.0, 1.0, bins + 1)), "num": 0, "nonfinite": dropped}
    f64 = finite.astype("float64", copy=False)
    lo, hi = float(f64.min()), float(f64.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(f64, bins=bins, range=(lo, hi))
    out = {"counts": [int(x) for x in counts], "edges": [float(x) for x in edges], "num": int(f64.size),
           "min": float(f64.min()), "max": float(f64.max()), "sum": float(f64.sum()),
           "sum_squares": float(np.dot(f64, f64))}
    if dropped:
        out["nonfinite"] = dropped
    return out


def device_histogram(t: Any, bins: int, what: str = "Histogram") -> dict[str, Any]:
    """Bin a torch tensor where it lives; nothing waits for the device until the ONE copy of the
    counts and stats (no boolean indexing, no ``histc`` with host bounds: each would sync)."""
    import torch

    x = t.detach().reshape(-1).float()
    fin = torch.isfinite(x)
    inf = torch.tensor(float("inf"), device=x.device)
    lo = torch.where(fin, x, inf).min()
    hi = torch.where(fin, x, -inf).max()
    same = hi <= lo  # one distinct value: a bin of width 1 around it, as numpy does
    lo2, hi2 = torch.where(same, lo - 0.5, lo), torch.where(same, hi + 0.5, hi)
    x0 = torch.where(fin, x, lo2)
    idx = (x0 - lo2).div_(hi2 - lo2).mul_(bins).long().clamp_(0, bins - 1)
    counts = torch.zeros(bins, dtype=torch.int64, device=x.device).scatter_add_(0, idx, fin.long())
    dtype = torch.float32 if x.device.type == "mps" else torch.float64
    stats = torch.stack([lo, hi, lo2, hi2, torch.where(fin, x, 0.0).sum(), torch.where(fin, x * x, 0.0).sum()])
    host = torch.cat([counts.to(dtype), stats.to(dtype), fin.sum().reshape(1).to(dtype)]).cpu().tolist()  # the copy
    n_fin = int(host[bins + 6])
    if n_fin == 0:
        raise MediaError(f"{what}: the tensor holds no finite value. Fix: check it before logging")
    lo_f, hi_f, lo2_f, hi2_f, total, squares = host[bins:bins + 6]
    step = (hi2_f - lo2_f) / bins
    out = {"counts": [int(c) for c in host[:bins]], "edges": [lo2_f + i * step for i in range(bins)] + [hi2_f],
           "num": n_fin, "min": lo_f, "max": hi_f, "sum": total, "sum_squares": squares}
    dropped = int(x.numel()) - n_fin
    if dropped:
        out["nonfinite"] = dropped
    return out


class Text(MediaValue):
    """A text (markdown where the backend renders it)."""

    kind = "text"

    def __init__(self, text: str, caption: str = "") -> None:
        self.text, self.caption = text, str(caption or "")

    def payload(self, key: str, opts: Options) -> Payload:
        if not isinstance(self.text, str):
            raise MediaError(f"Text {key!r}: {type(self.text).__name__} is not a string. Fix: pass str(...)")
        return Payload("txt", self.text.encode("utf-8", "surrogatepass"))


_CELL = (str, int, float, bool, type(None))


class Table(MediaValue):
    """A table: ``columns`` and ``rows`` (each row one cell per column), or a pandas DataFrame.
    Cells are strings, numbers, booleans or None; anything else is stored as its ``str()``."""

    kind = "table"

    def __init__(self, columns: Any = None, rows: Any = None, *, dataframe: Any = None, caption: str = "") -> None:
        if dataframe is None and hasattr(columns, "to_dict") and hasattr(columns, "columns"):
            columns, dataframe = None, columns
        self.columns, self.rows, self.dataframe, self.caption = columns, rows, dataframe, str(caption or "")

    def payload(self, key: str, opts: Options) -> Payload:
        what = f"Table {key!r}"
        columns, rows = self.columns, self.rows
        if self.dataframe is not None:
            df = self.dataframe
            columns, rows = [str(c) for c in df.columns], df.astype(object).values.tolist()
        if columns is None or isinstance(columns, (str, bytes)) or not hasattr(columns, "__iter__"):
            raise MediaError(f"{what}: no column names. Fix: Table(columns=[...], rows=[...]) or Table(dataframe)")
        columns = [str(c) for c in columns]
        if not columns:
            raise MediaError(f"{what}: no columns. Fix: name at least one column")
        if len(set(columns)) != len(columns):
            raise MediaError(f"{what}: column names repeat ({columns}). Fix: give each column its own name")
        out_rows: list[list[Any]] = []
        stringified = 0
        for i, row in enumerate(rows if rows is not None else ()):
            if isinstance(row, Mapping):
                row = [row.get(c) for c in columns]
            elif isinstance(row, (str, bytes)) or not hasattr(row, "__len__"):
                raise MediaError(f"{what}: row {i} is not a sequence of cells. Fix: pass each row as a list")
            if len(row) != len(columns):
                raise MediaError(f"{what}: row {i} has {len(row)} cells, the table {len(columns)} columns (a ragged "
                                 "table). Fix: give every row one cell per column")
            cells = []
            for cell in row:
                if hasattr(cell, "item") and not isinstance(cell, _CELL):
                    try:
                        cell = cell.item()
                    except Exception:
                        pass
                if not isinstance(cell, _CELL):
                    cell, stringified = str(cell), stringified + 1
                cells.append(cell)
            out_rows.append(cells)
        data = json.dumps({"columns": columns, "rows": out_rows}, allow_nan=True).encode()
        meta: dict[str, Any] = {"columns": len(columns), "rows": len(out_rows)}
        if stringified:
            meta["stringified"] = stringified
        return Payload("json", data, meta)


class Figure(MediaValue):
    """A matplotlib figure, rendered to a PNG image (by the agent: the trainer only pickles it,
    ~8x cheaper than rendering; a figure that cannot be pickled is rendered in the trainer).
    ``close=True`` (the default, as TensorBoard's ``add_figure``) closes it once recorded."""

    kind = "image"

    def __init__(self, figure: Any, caption: str = "", *, close: bool = True, dpi: float | None = None) -> None:
        self.figure, self.caption, self.close, self.dpi = figure, str(caption or ""), close, dpi

    def payload(self, key: str, opts: Options) -> Payload:
        import io
        import pickle

        fig = self.figure
        if not (hasattr(fig, "savefig") and hasattr(fig, "canvas")):
            raise MediaError(f"Figure {key!r}: {type(fig).__name__} is not a matplotlib figure. Fix: pass the Figure "
                             "(e.g. fig from plt.subplots()), or an image array to trackkit.Image")
        meta: dict[str, Any] = {"figure": True}
        if self.dpi is not None:
            meta["dpi"] = float(self.dpi)
        try:
            try:
                out = Payload("pickle", pickle.dumps(fig, protocol=pickle.HIGHEST_PROTOCOL), meta)
            except Exception:  # an artist that cannot be pickled: render it here
                buf = io.BytesIO()
                fig.savefig(buf, format="png", dpi=self.dpi)
                out = Payload("png", buf.getvalue(), meta)
        finally:
            if self.close:
                try:
                    import matplotlib.pyplot as plt

                    plt.close(fig)
                except Exception:
                    pass
        return out


class Audio(MediaValue):
    """An audio clip: samples (``(n,)`` mono or ``(n, channels)``; float -1..1 or int16) at
    ``sample_rate``, or the path of a WAV file."""

    kind = "audio"

    def __init__(self, data: Any, sample_rate: int | None = None, caption: str = "") -> None:
        self.data, self.sample_rate, self.caption = data, sample_rate, str(caption or "")

    def payload(self, key: str, opts: Options) -> Payload:
        what = f"Audio {key!r}"
        if isinstance(self.data, (str, os.PathLike)):
            data = _read_file(os.fspath(self.data), what)
            if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
                path = os.fspath(self.data)
                raise MediaError(f"{what}: {path!r} is not a WAV file. Fix: pass a .wav file or samples")
            return Payload("wav", data, {"source": os.path.abspath(os.fspath(self.data))})
        sr = self.sample_rate
        if not isinstance(sr, int) or isinstance(sr, bool) or sr <= 0:
            raise MediaError(f"{what}: sample_rate={sr!r} is not a positive whole number. Fix: e.g. sample_rate=16000")
        np = _np()
        arr = _to_numpy(self.data, what)
        if arr.ndim == 2 and arr.shape[0] <= 8 < arr.shape[1]:
            arr = arr.T  # (channels, n) -> (n, channels)
        if arr.ndim not in (1, 2) or arr.size == 0 or (arr.ndim == 2 and not 1 <= arr.shape[1] <= 8):
            raise MediaError(f"{what}: shape {tuple(arr.shape)} is not audio. Fix: pass (n,) or (n, channels) samples")
        if arr.dtype.kind not in "if":
            raise MediaError(f"{what}: dtype {arr.dtype} is not audio samples. Fix: float -1..1 or int16")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise MediaError(f"{what}: the samples hold NaN or inf. Fix: check them before logging")
        arr = np.ascontiguousarray(arr)
        return Payload("raw", arr.tobytes(), {"dtype": arr.dtype.str, "shape": list(arr.shape), "sample_rate": sr})
