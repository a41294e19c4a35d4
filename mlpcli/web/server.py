"""`mlp serve`: the drawing page, and POST /predict for any image, on a local HTTP server.

The standard library's ThreadingHTTPServer is enough here: one page, two small JSON answers,
a person drawing. GET / is the page (static/index.html: no CDN, nothing from the internet),
GET /info names the classes, POST /predict takes a PNG or JPEG body and answers with what
`mlp predict --json` prints for one image (with ?pixels=1, also the input the network saw).
A body over MAX_BODY bytes, or one that is not an image, gets 400-range status and a message.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from ..errors import MlpError
from ..io.checkpoint import Checkpoint

MAX_BODY = 4 << 20  # 4 MiB: a phone photo of a digit; the page's drawings are a few kB
READ_TIMEOUT = 10.0  # seconds a client may take to send its request


class PredictServer(ThreadingHTTPServer):
    """Serves the page and predictions of `checkpoint` at (host, port); port 0 takes a free
    one (server_address says which)."""

    daemon_threads = True  # a hung client does not hold the process at exit

    def __init__(self, checkpoint: Checkpoint, host: str = "127.0.0.1", port: int = 8000):
        self.checkpoint = checkpoint
        self.page = resources.files(__package__).joinpath("static/index.html").read_bytes()
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: PredictServer
    server_version = "mlpcli"
    timeout = READ_TIMEOUT

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        elif path == "/info":
            checkpoint = self.server.checkpoint
            self._json(
                HTTPStatus.OK,
                {
                    "dataset": checkpoint.dataset,
                    "classes": checkpoint.class_names,
                    "image_shape": list(checkpoint.image_shape),
                },
            )
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {path}; try / or /predict"})

    def do_POST(self) -> None:
        split = urlsplit(self.path)
        if split.path != "/predict":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"nothing to POST at {split.path}"})
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self.close_connection = True
            self._json(
                HTTPStatus.LENGTH_REQUIRED, {"error": "send the image with a Content-Length"}
            )
            return
        if int(length) > MAX_BODY:
            self.close_connection = True  # the body is not read: the connection cannot go on
            self._json(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": f"the image is {length} bytes, more than {MAX_BODY} (4 MiB)"},
            )
            return
        body = self.rfile.read(int(length))
        if len(body) != int(length) or not body:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "the body is empty or cut short"})
            return
        from ..prediction import predict_images

        try:
            (answer,) = predict_images(self.server.checkpoint, [body], ["POST /predict"])
        except MlpError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        reply = answer.record()
        if parse_qs(split.query).get("pixels") == ["1"]:
            reply["pixels"] = (answer.image.pixels * 255).round().astype(int).tolist()
        self._json(HTTPStatus.OK, reply)

    def _json(self, status: HTTPStatus, value: dict) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass  # the CLI says where it serves; a line per drawing stroke would be noise
