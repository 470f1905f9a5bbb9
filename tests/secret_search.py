"""The secret search of the Router and adapter tests: distinctive keys planted everywhere a user can
put one, a scripted provider that records what each request carried, and a search of text for them.

Every planted value starts with ``SECRET_PREFIX``, so one search finds any of them; each is
distinct, so a test can check that each one reached the provider (else the search could pass
because the key was lost on the way).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from routoo.testing import ScriptedLLM, register_scripted_provider

SECRET_PREFIX = "sk-ROUTOO-SECRET-"
# Loggers that stay quiet at the root's level unless set themselves.
CHATTY_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "routoo", "httpx", "langchain", "llama_index")


def secret(place: str) -> str:
    """The planted key of one place: ``sk-ROUTOO-SECRET-<place>``."""
    return f"{SECRET_PREFIX}{place}"


# conftest's POOL with a key of its own for scripted/small (where math prompts go).
POOL_WITH_KEY = [
    {"name": "scripted/small", "like": "math-model", "litellm_params": {"api_key": secret("spec-api-key")}},
    {"name": "scripted/tiny", "like": "poet-model"},
    {"name": "scripted/large", "like": "big-model"},
]


def adapter_params(adapter: str) -> dict[str, object]:
    """litellm parameters an adapter sends with every call: a secret one, a secret header, an ordinary one."""
    return {
        "aws_secret_access_key": secret(f"{adapter}-aws"),
        "extra_headers": {"Authorization": f"Bearer {secret(f'{adapter}-header')}"},
        "seed": 7,
    }


def leaks(*texts: object) -> list[str]:
    """Every piece of ``texts`` (their repr, or the text of a string) that holds a planted key."""
    found = []
    for text in texts:
        shown = text if isinstance(text, str) else repr(text)
        if SECRET_PREFIX in shown:
            start = shown.index(SECRET_PREFIX)
            found.append(shown[max(0, start - 80) : start + 60])
    return found


def saved_leaks(folder: Path) -> list[str]:
    """The files under ``folder`` that hold a planted key."""
    return [str(file) for file in folder.rglob("*") if file.is_file() and SECRET_PREFIX in file.read_text()]


class RecordingProvider:
    """The scripted provider, keeping the credentials and parameters of every request it received."""

    def __init__(self, handler: ScriptedLLM) -> None:
        self.handler = handler
        self.requests: list[dict[str, Any]] = []
        begin = handler._begin

        def recording_begin(model: str, messages: list, kwargs: dict[str, Any], *, stream: bool) -> Any:
            self.requests.append(
                {"model": model, **{key: kwargs.get(key) for key in ("api_key", "headers", "litellm_params")}}
                | {"optional_params": kwargs.get("optional_params")}
            )
            return begin(model, messages, kwargs, stream=stream)

        handler._begin = recording_begin  # type: ignore[method-assign]

    def received(self) -> str:
        """Everything the provider was sent, as text to search."""
        return repr(self.requests)

    def missing(self, planted: Iterable[str]) -> list[str]:
        """The planted keys that never reached the provider."""
        received = self.received()
        return [key for key in planted if key not in received]


def recording_provider() -> RecordingProvider:
    """routoo.testing's scripted provider, registered afresh, recording every request."""
    return RecordingProvider(register_scripted_provider())


@contextmanager
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every logger at DEBUG (litellm's included) for the block, captured by ``caplog``."""
    levels = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    caplog.set_level(logging.DEBUG)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
