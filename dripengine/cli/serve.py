"""``drip serve``: the web app (webhooks, tracking, unsubscribe, API) under uvicorn."""

from __future__ import annotations

import logging
import logging.config
import os

import click

from dripengine.cli import SERVE_HELP
from dripengine.cli.app import App
from dripengine.exceptions import ConfigError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_config() -> dict[str, object]:
    """One format for every line ``drip serve`` logs: ours, uvicorn's server and access logs
    (uvicorn's default gives them its own two formats), in every worker process."""
    handler = {"class": "logging.StreamHandler", "formatter": "drip", "stream": "ext://sys.stderr"}
    quiet = {"handlers": ["drip"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"drip": {"format": LOG_FORMAT}},
        "handlers": {"drip": handler},
        "loggers": {"uvicorn": quiet, "uvicorn.error": {"level": "INFO"}, "uvicorn.access": quiet},
        "root": {"handlers": ["drip"], "level": "INFO"},
    }


@click.command(help=SERVE_HELP)
@click.option("--host", default=None, help="Address to listen on [default: web.host, 127.0.0.1].")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port [default: web.port, 8080]."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes serving requests (each with its own database connections).",
)
@click.pass_obj
def serve(app: App, host: str | None, port: int | None, workers: int) -> None:
    """`drip serve`; its help is :data:`dripengine.cli.SERVE_HELP` (it names the ESP)."""
    import uvicorn

    from dripengine.web import build_app
    from dripengine.web.context import WebContext

    settings = app.settings
    host = host or settings.web.host
    port = port or settings.web.port
    if workers > 1 and app.now_override is not None:
        raise ConfigError("--now works with one worker only (drop --workers or --now)")
    logging.config.dictConfig(log_config())
    log = logging.getLogger("dripengine.web")
    # everything checked here, once, so a bad setting is one line and not a worker crash loop
    ctx = WebContext(settings=settings, engine=app.ready_engine(), sla=app.sla, clock=app.clock)
    asgi = build_app(ctx, heartbeat=True)
    log.info("drip serve on http://%s:%s (%s worker(s)); Ctrl-C stops it", host, port, workers)
    if workers == 1:
        uvicorn.run(
            asgi,
            host=host,
            port=port,
            log_level="info",
            log_config=log_config(),
            proxy_headers=True,
            limit_concurrency=settings.web.max_connections,
        )
        return
    # several processes import the app by name and read the same settings
    app.engine.dispose()
    if app.config_path:
        os.environ["DRIP_CONFIG"] = os.path.abspath(app.config_path)
    uvicorn.run(
        "dripengine.web:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=log_config(),
        proxy_headers=True,
        limit_concurrency=settings.web.max_connections,
    )
