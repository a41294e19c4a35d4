"""`mlp serve`: the drawing page, and POST /predict for any image, on a local HTTP server.

The standard library's ThreadingHTTPServer is enough here: one page, two small JSON answers,
a person drawing. GET / is the page (static/index.html: no CDN, nothing from the internet),
GET /info names the classes, POST /predict takes a PNG or JPEG body and answers with what
`mlp predict --json` prints for one image (with ?pixels=1, also the input the network saw).
A body over MAX_BODY bytes, or one that is not an image, gets 400-range status and a message.

A server on this machine is still reachable from any web page the user opens, so it answers
like a careful local server: only requests whose Host is the address it listens on or a
loopback name (a DNS-rebinding page's Host is its own name), a POST only from the page's own
Origin (or with none, as curl sends) and only with an image type or octet-stream (a
cross-site form can send neither without the browser asking first); at most WORKERS requests
at once (503 with Retry-After beyond), each within REQUEST_DEADLINE whatever pace the client
sends at; /info names the dataset, never a folder's path.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ..errors import MlpError
from ..io.checkpoint import Checkpoint

MAX_BODY = 4 << 20  # 4 MiB: a phone photo of a digit; the page's drawings are a few kB
READ_TIMEOUT = 10.0  # seconds a client may take between two pieces of its request
REQUEST_DEADLINE = 20.0  # seconds a whole request may take, read, predicted and answered
# requests served at once: an image's decoding and preparation hold a few hundred MB at the
# largest size prediction takes, and the machine has few cores to give them
WORKERS = 2
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
IMAGE_TYPES = ("image/", "application/octet-stream")


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine alone."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class PredictServer(ThreadingHTTPServer):
    """Serves the page and predictions of `checkpoint` at (host, port); port 0 takes a free
    one (server_address says which)."""

    daemon_threads = True  # a hung client does not hold the process at exit

    def __init__(self, checkpoint: Checkpoint, host: str = "127.0.0.1", port: int = 8000):
        self.checkpoint = checkpoint
        self.page = resources.files(__package__).joinpath("static/index.html").read_bytes()
        self.slots = threading.BoundedSemaphore(WORKERS)
        self.deadline = REQUEST_DEADLINE
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def everywhere(self) -> bool:
        """Whether it listens on every address (0.0.0.0, ::, or ''), not one."""
        return self.server_address[0] in ("0.0.0.0", "::", "")

    def allows_host(self, host: str) -> bool:
        """Whether a request's Host header names this server: its own address or a loopback
        name, with its port. Listening on every address, any name that reached it does."""
        name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if port != str(self.server_address[1]):
            return False
        return self.everywhere or name in (self.server_address[0], *LOOPBACK_NAMES)

    def process_request(self, request, client_address) -> None:
        """A thread for the request while a slot is free; 503 at once when none is."""
        if not self.slots.acquire(blocking=False):
            try:
                body = b'{"error": "busy: too many requests at once; try again in a second"}'
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                    b"Content-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Handler(BaseHTTPRequestHandler):
    server: PredictServer
    server_version = "mlpcli"
    timeout = READ_TIMEOUT

    def setup(self) -> None:
        super().setup()
        # the whole request's deadline: the timeout above bounds each wait alone
        self.deadline = threading.Timer(self.server.deadline, self._hang_up)
        self.deadline.daemon = True
        self.deadline.start()

    def finish(self) -> None:
        self.deadline.cancel()
        try:
            super().finish()
        except OSError:
            pass  # hung up on at the deadline

    def _hang_up(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _refused(self) -> bool:
        """Answer 403 to a request from elsewhere than this server's page (see the module's
        docstring), and say whether it was."""
        host = self.headers.get("Host", "")
        if not self.server.allows_host(host):
            self._json(HTTPStatus.FORBIDDEN, {"error": f"this server does not serve {host!r}"})
            return True
        origin = self.headers.get("Origin")
        if self.command == "POST" and origin is not None and origin != f"http://{host}":
            self._json(HTTPStatus.FORBIDDEN, {"error": f"no POST from the page at {origin!r}"})
            return True
        return False

    def do_GET(self) -> None:
        if self._refused():
            return
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        elif path == "/info":
            checkpoint = self.server.checkpoint
            self._json(
                HTTPStatus.OK,
                {
                    "dataset": Path(checkpoint.dataset).name,  # a folder's name, not its path
                    "classes": checkpoint.class_names,
                    "image_shape": list(checkpoint.image_shape),
                },
            )
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {path}; try / or /predict"})

    def do_POST(self) -> None:
        self.close_connection = True  # a body left unread would be read as the next request
        if self._refused():
            return
        split = urlsplit(self.path)
        if split.path != "/predict":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"nothing to POST at {split.path}"})
            return
        kind = self.headers.get("Content-Type", "")
        if not kind.startswith(IMAGE_TYPES):
            self._json(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                {"error": f"send an image (Content-Type image/png, say), not {kind!r}"},
            )
            return
        length = self.headers.get("Content-Length")
        if length is None:
            self._json(
                HTTPStatus.LENGTH_REQUIRED, {"error": "send the image with a Content-Length"}
            )
            return
        if not (length.isascii() and length.isdigit()):
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"Content-Length {length!r} is no size"})
            return
        if int(length) > MAX_BODY:
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
