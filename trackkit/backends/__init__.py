"""Backend adapters. Each module holds one Sink and one Reader and imports only
``trackkit.events``, ``trackkit.errors``, ``trackkit.backend`` and its own SDK.
The core names them by registry strings only (``trackkit/registry.py``)."""
