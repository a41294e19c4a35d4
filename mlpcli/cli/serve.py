"""`mlp serve`: the drawing page."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from .common import checkpoint_option, echo_err, one_checkpoint


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path), required=False)
@checkpoint_option
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on; 0 takes a free one.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on: 127.0.0.1 is this machine alone; 0.0.0.0 opens it to the network.",
)
def serve(checkpoint, checkpoint_option, port: int, host: str):
    """A local page for drawing a digit with the mouse or a finger: as you draw, it shows the
    image the network sees and the probability of each class. POST /predict with a PNG or
    JPEG body answers with the JSON of `mlp predict --json`, so the page is a small API too.
    Ctrl-C stops it."""
    from ..io.checkpoint import load_checkpoint
    from ..web.server import PredictServer, is_loopback

    loaded = load_checkpoint(one_checkpoint(checkpoint, checkpoint_option))
    try:
        server = PredictServer(loaded, host, port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
        ) from None
    if not is_loopback(server.server_address[0]):
        echo_err(
            f"warning: listening on {server.server_address[0] or 'every address'}, not this "
            "machine alone: anyone who can reach it on the network can use the page"
        )
    terminated = []

    def stop(signum, frame) -> None:  # SIGTERM ends it as Ctrl-C does, and says so
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)  # before the line that says it serves
    try:
        click.echo(f"serving {server.url} (Ctrl-C to stop)", err=False)
        sys.stdout.flush()
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        echo_err("stopped by SIGTERM" if terminated else "stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    if terminated:
        sys.exit(128 + signal.SIGTERM)
