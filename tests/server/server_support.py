"""Fixtures and helpers of the server tests: ``routoo serve``'s app live on a free port of 127.0.0.1
(uvicorn in a thread), answering with the scripted provider and routing with the shipped predictor.

A plain module, imported by the test modules, not a conftest: a second ``conftest.py`` would
replace the root one for every test that imports it by name (``from conftest import POOL``).

The scripted pool is scored like three models the shipped predictor knows, so routing is real: a
hard question goes to scripted/large, an easy one to scripted/small. Every module here marks its
tests ``allow_hosts(["127.0.0.1"])``: the suite blocks every other socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from routoo.server import BackgroundServer, ServerConfig

SCRIPTED_POOL: list[dict[str, Any]] = [
    {"name": "scripted/small", "like": "gpt-3.5-turbo-1106"},
    {"name": "scripted/large", "like": "gpt-4-1106-preview"},
    {"name": "scripted/tiny", "like": "mistralai/mistral-7b-chat"},
]
EASY = "What is 2+2?"
HARD = "Prove that there are infinitely many primes, rigorously."
ALICE = "sk-alice-0123456789"  # no budget
BOB = "sk-bob-0123456789"  # a small hard budget
BOB_BUDGET_USD = 0.0002
ADD_TOOL = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two numbers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
}


def server_config(folder: Path, **changes: Any) -> ServerConfig:
    """A scripted config with two keys, its ledger and decision log in ``folder``."""
    fields: dict[str, Any] = {
        "models": SCRIPTED_POOL,
        "scripted": True,
        "keys": [
            {"name": "alice", "secret": ALICE},
            {"name": "bob", "secret": BOB, "budget_usd": BOB_BUDGET_USD},
        ],
        "ledger": {"path": folder / "ledger.sqlite", "synchronous": "normal"},
        "log": folder / "decisions.sqlite",
        "port": 0,
    }
    return ServerConfig(**{**fields, **changes})


@pytest.fixture(name="server", scope="module")
def server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """One live server for a module's tests (read-mostly tests: each asserts on its own calls)."""
    with BackgroundServer(server_config(tmp_path_factory.mktemp("server"))) as running:
        yield running


@pytest.fixture(name="start_server")
def start_server_fixture(tmp_path: Path) -> Iterator[Callable[..., BackgroundServer]]:
    """Starts servers of their own for a test (``start_server(**config changes)``); stops them after."""
    started: list[BackgroundServer] = []

    def start(**changes: Any) -> BackgroundServer:
        running = BackgroundServer(server_config(tmp_path, **changes)).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def client(server: BackgroundServer, key: str = ALICE, **options: Any):
    """The official OpenAI client on ``server``, retrying nothing (the tests count calls)."""
    from openai import OpenAI

    return OpenAI(base_url=server.base_url, api_key=key, max_retries=0, **options)
