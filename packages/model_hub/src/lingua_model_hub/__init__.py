"""Lingua model hub: versioned model files with SHA256 checks and resumable downloads.

The public API: `create_app` (the FastAPI app), `build_server` (uvicorn with the hub's
connection limits), `Catalog` (the store, for operators' tools and tests), `HubSettings`,
`HubError`, and `HubProcess` (a hub in a child process, for tests, demos and benchmarks).
The manifest shapes the hub answers with (`HubModelInfo`, ...) are `lingua_protocol`'s.
"""

__version__ = "0.1.0"  # set before the imports below: the modules read it

from ._app import create_app
from ._catalog import Catalog, HubError
from ._process import HubProcess
from ._server import build_server
from ._settings import HubSettings

__all__ = [
    "Catalog",
    "HubError",
    "HubProcess",
    "HubSettings",
    "__version__",
    "build_server",
    "create_app",
]
