"""Running the server: ``serve`` in the foreground (``routoo serve``), ``BackgroundServer`` in a thread.

Both start the service first (the predictor, the ledger), so that a bad config or a ledger
another server holds fails at once with a clear error, before anything listens.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

from routoo.errors import ConfigError
from routoo.server.config import ServerConfig
from routoo.server.service import RoutooService

if TYPE_CHECKING:
    import uvicorn


def serve(
    config: ServerConfig, host: str | None = None, port: int | None = None, log_level: str = "info"
) -> None:
    """Serve ``config`` on ``host``:``port`` (the config's by default) until interrupted."""
    uvicorn = _uvicorn()
    from routoo.server.app import create_app

    host = config.host if host is None else host
    config.check_exposure(host)
    service = RoutooService(config).start()
    uvicorn.run(
        create_app(service=service),
        host=host,
        port=config.port if port is None else port,
        log_level=log_level,
        timeout_graceful_shutdown=10,
    )


class BackgroundServer:
    """The server on a free port of 127.0.0.1, in a daemon thread: for tests, examples and benchmarks.

    ``with BackgroundServer(config) as server: OpenAI(base_url=server.base_url, ...)``.
    ``service`` is the running ``RoutooService`` (its ``scripted`` provider can be told to fail).
    """

    def __init__(self, config: ServerConfig, *, start_timeout_s: float = 30.0) -> None:
        self.config = config
        self.start_timeout_s = start_timeout_s
        self.service: RoutooService | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    def start(self) -> BackgroundServer:
        uvicorn = _uvicorn()
        from routoo.server.app import create_app

        service = RoutooService(self.config).start()
        listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(("127.0.0.1", 0))
        self._port = listening.getsockname()[1]
        settings = uvicorn.Config(
            create_app(service=service), log_level="warning", lifespan="on", backlog=2048
        )
        server = uvicorn.Server(settings)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listening]}, name="routoo-server", daemon=True
        )
        self.service, self._server = service, server
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError("the routoo server did not start; see its log")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (streams in flight are cut short) and close the ledger."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.service is not None:
            self.service.close()
        self._server = self._thread = None

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url``: ``http://127.0.0.1:<port>/v1``."""
        if self._port is None:
            raise ConfigError("the server is not running: start() it first")
        return f"http://127.0.0.1:{self._port}/v1"

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _uvicorn():  # -> the uvicorn module
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as error:
        raise ConfigError(
            f"routoo serve needs the server extra: pip install 'routoo[server]' ({error})"
        ) from None
    return uvicorn
