"""`s3dest serve`, `s3dest worker` and `s3dest demo`: the long-running commands."""

from __future__ import annotations

from typing import Any

import click

from s3dest.cli import common


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--no-workers", is_flag=True, help="serve the API only; run `s3dest worker` apart")
@common.reports_errors()
def serve(host: str, port: int, no_workers: bool) -> None:
    """Serve the REST API and dashboard (and deliver, unless --no-workers)."""

    from s3dest.api.http_protocol import server_config
    from s3dest.app import create_app
    from s3dest.runtime import open_state

    settings = common.settings()
    state = open_state(settings)
    app = create_app(state, workers=not no_workers)
    config = server_config(app, host=host, port=port, read_timeout=settings.read_timeout_seconds)
    announcing_server(config).run()


def listening_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def announcing_server(config: Any) -> Any:
    """A uvicorn server that says where it listens once its socket is bound (uvicorn's own
    line is at INFO, which `serve` does not print): the URL, the dashboard and /docs."""
    import logging

    import uvicorn

    class Announcing(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if not self.started:
                return
            port = config.port
            for server in self.servers:
                for sock in server.sockets:
                    port = sock.getsockname()[1]
            url = listening_url(config.host, port)
            click.echo(f"s3dest is serving on {url}  (dashboard {url}/, API docs {url}/docs)")
            logging.getLogger("s3dest.serve").info("listening", extra={"url": url})

    return Announcing(config)


@click.command()
@common.reports_errors()
def worker() -> None:
    """Deliver queued messages (no API). Stops gracefully on SIGTERM/SIGINT."""
    from s3dest.delivery.runner import run_until_signalled
    from s3dest.runtime import configure_egress, open_box, open_engine

    settings = common.settings()
    configure_egress(settings)
    run_until_signalled(open_engine(settings), settings, open_box(settings))


@click.command()
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--no-wait", is_flag=True, help="exit after printing what landed")
def demo(port: int, no_wait: bool) -> None:
    """Start a local S3 server and s3dest, feed sample data, show what lands."""
    from s3dest.devtools.demo import run_demo

    run_demo(port=port, wait=not no_wait)
