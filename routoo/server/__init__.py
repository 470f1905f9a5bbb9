"""``routoo serve``: Routoo behind an OpenAI-compatible HTTP API (FastAPI on uvicorn, the ``server`` extra).

``load_config`` reads a ``ServerConfig`` (TOML or JSON); ``serve`` runs it in the
foreground; ``BackgroundServer`` runs it on a free port of 127.0.0.1 in a thread;
``create_app`` is the ASGI app. FastAPI and uvicorn are imported only by the app and by
``serve`` / ``BackgroundServer``: ``import routoo.server`` needs neither. See docs/server.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from routoo.server.config import (
    DEFAULT_MODELS,
    DEFAULT_PRESETS,
    KeySettings,
    LedgerSettings,
    LimitSettings,
    PresetSettings,
    ServerConfig,
    SessionSettings,
    load_config,
)
from routoo.server.running import BackgroundServer, serve

if TYPE_CHECKING:
    from routoo.server.app import create_app

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_PRESETS",
    "BackgroundServer",
    "KeySettings",
    "LedgerSettings",
    "LimitSettings",
    "PresetSettings",
    "ServerConfig",
    "SessionSettings",
    "create_app",
    "load_config",
    "serve",
]


def __getattr__(name: str) -> Any:
    if name == "create_app":  # imports FastAPI
        from routoo.server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
