"""`hatch run client --web`: serve the web client's static files and a `config.json` that
points the page at a scheduler.

The page needs nothing from this server beyond files: any web server or CDN can serve
`lingua_client/web/` (the page then takes the scheduler from `?scheduler=`, its saved
setting, or `ws://<its host>:5010/ws/session`). This one is the stdlib HTTP server in a
thread per request: the files are small and few, and it adds no dependency.
"""

from __future__ import annotations

import json
import logging
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("lingua.client.web")

WEB_ROOT = Path(__file__).with_name("web")

# The page renders peer text only as text; this policy is a second fence: scripts, styles and
# worklets only from this server, network connections to any scheduler the user names.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss: http: https:; media-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


class WebClientHandler(SimpleHTTPRequestHandler):
    """Static files from `WEB_ROOT`, `/config.json` from the configured scheduler URL."""

    extensions_map = {  # noqa: RUF012 - the stdlib's own class attribute, replaced whole
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".css": "text/css",
        ".html": "text/html; charset=utf-8",
        ".json": "application/json",
    }

    def __init__(self, *args: Any, scheduler_url: str, **kwargs: Any) -> None:
        self.scheduler_url = scheduler_url
        super().__init__(*args, directory=str(WEB_ROOT), **kwargs)

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/config.json":
            body = json.dumps({"scheduler": self.scheduler_url}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def list_directory(self, path: str | Any) -> None:
        self.send_error(404, "not found")
        return None

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def make_server(host: str, port: int, scheduler_url: str) -> ThreadingHTTPServer:
    """A bound server (port 0 picks a free one); the caller runs `serve_forever` and closes it."""
    handler = partial(WebClientHandler, scheduler_url=scheduler_url)
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def page_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    host = host.decode() if isinstance(host, bytes) else str(host)
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}/"


def serve_web(host: str, port: int, scheduler_url: str) -> int:
    """Serve until interrupted; prints the page's URL. Exit status 2 when the port is taken."""
    try:
        server = make_server(host, port, scheduler_url)
    except OSError as exc:
        print(f"lingua-client: cannot listen on {host}:{port}: {exc}", flush=True)
        return 2
    print(f"Lingua web client: {page_url(server)} (scheduler {scheduler_url})", flush=True)
    thread = threading.Thread(target=server.serve_forever, name="web-server", daemon=True)
    thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0
