"""Lingua model hub: versioned model files with SHA256 checks and resumable downloads.

The public API: `create_app` (the FastAPI app), `build_server` (uvicorn with the hub's
connection limits), `Catalog` (the store, for operators' tools and tests), `HubSettings`,
`HubError`, and `HubProcess` (a hub in a child process, for tests, demos and benchmarks).
The manifest shapes the hub answers with live in `lingua_protocol.hub_manifest`.
"""

__version__ = "0.1.0"

from .app import create_app  # noqa: E402  (the modules read __version__)
from .catalog import Catalog, HubError  # noqa: E402
from .process import HubProcess  # noqa: E402
from .server import build_server  # noqa: E402
from .settings import HubSettings  # noqa: E402

__all__ = [
    "Catalog",
    "HubError",
    "HubProcess",
    "HubSettings",
    "__version__",
    "build_server",
    "create_app",
]
