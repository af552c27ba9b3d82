"""`drip serve` inside the demo: the app on a loopback port, in a thread, on the demo's clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from dripengine.demo.timeline import DemoClock


@contextmanager
def serving(clock: DemoClock, port: int) -> Iterator[threading.Thread]:
    """The app of the folder's settings served on 127.0.0.1:``port`` until the block ends; the
    server's thread is what is yielded (alive while it serves)."""
    import uvicorn

    from dripengine.config import load_settings
    from dripengine.funnel.sla import load_sla
    from dripengine.storage.engine import open_engine
    from dripengine.web import build_app
    from dripengine.web.context import WebContext

    settings = load_settings()
    engine = open_engine(settings)
    ctx = WebContext(settings, engine, load_sla(settings.path("sla")), clock)
    config = uvicorn.Config(
        build_app(ctx), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="drip-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"drip serve did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield thread
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
