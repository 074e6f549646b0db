"""Media: images, histograms, texts, tables, figures and audio (docs/media.md).

``values`` are the types a user logs and what the trainer writes (raw payloads, no encoding);
``store`` appends payloads to the run directory; ``encode`` is the agent's half (PNG, binning,
WAV, figure rendering); ``watch`` logs a torch module's histograms."""

from .values import Audio, Figure, Histogram, Image, MediaError, MediaValue, Options, Table, Text

__all__ = ["Audio", "Figure", "Histogram", "Image", "MediaError", "MediaValue", "Options", "Table", "Text"]
