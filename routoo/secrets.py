"""Secrets among litellm parameters: hidden wherever they are kept, revealed only in the call sent.

A parameter is a secret when a word of its name says so (``SECRET_WORDS``: ``api_key``,
``azure_ad_token``, ``aws_secret_access_key``, ``aws_session_token``, ``vertex_credentials``,
``password``...), as is an HTTP header in ``extra_headers`` or ``headers`` named that way
(``Authorization``, ``x-api-key``). Words, not substrings: ``max_tokens`` is no secret.

``hide_secrets`` wraps each secret value in pydantic's ``SecretStr`` (``Secret`` for one that
is not text, such as a credentials dict), whose repr, str and JSON are ``'**********'``: the
``ModelSpec``, ``Router`` and adapter settings that hold litellm parameters keep them hidden,
so reprs, serialisation, callback payloads and logs never show them. ``reveal_secrets``
unwraps them in the keyword arguments handed to litellm, and nowhere else; ``without_secrets``
leaves them out, for serialisation that must be plain JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import Secret, SecretBytes, SecretStr

# Words of a parameter's or header's name that make its value a secret.
SECRET_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "secret",
        "password",
        "passwd",
        "credential",
        "credentials",
        "authorization",
        "cookie",
    }
)
# Parameters holding HTTP headers, searched for secret headers.
HEADER_PARAMS = frozenset({"extra_headers", "headers"})
REDACTED = "**********"
# Shorter secret texts are not redacted: they would blank out ordinary words of a message.
MIN_REDACTED_LENGTH = 8
SECRET_TYPES = (SecretStr, SecretBytes, Secret)

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def is_secret_name(name: str) -> bool:
    """Whether a parameter or header called ``name`` holds a secret (``api_key``, ``x-api-key``)."""
    words = _SEPARATORS.split(_CAMEL_BOUNDARY.sub("_", name).lower())
    return any(word in SECRET_WORDS for word in words)


def hide_secrets(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with every secret value wrapped (values already wrapped are kept as they are)."""
    return {name: _hidden(name, value) for name, value in params.items()}


def reveal_secrets(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with every wrapped secret unwrapped: the keyword arguments to send to litellm."""
    return {name: _revealed(name, value) for name, value in params.items()}


def without_secrets(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` less every secret, wrapped or not: what may be saved or shown in full."""
    kept = {}
    for name, value in params.items():
        if name in HEADER_PARAMS and isinstance(value, Mapping):
            kept[name] = without_secrets(value)
        elif not (isinstance(value, SECRET_TYPES) or is_secret_name(name)):
            kept[name] = value
    return kept


def secret_texts(*params: Mapping[str, Any]) -> frozenset[str]:
    """The text of every secret in ``params`` (wrapped or not), and each long word of it (the key
    in "Bearer <key>"): what ``redact`` removes from a provider's error message."""
    texts: set[str] = set()
    for given in params:
        for name, value in reveal_secrets(hide_secrets(given)).items():
            if name in HEADER_PARAMS and isinstance(value, Mapping):
                texts |= secret_texts(value)
            elif isinstance(value, str) and is_secret_name(name):
                texts |= {value, *(word for word in value.split() if len(word) >= MIN_REDACTED_LENGTH)}
    return frozenset(text for text in texts if len(text) >= MIN_REDACTED_LENGTH)


def redact(text: str, secrets: frozenset[str]) -> str:
    """``text`` with every one of ``secrets`` in it replaced by ``REDACTED``, longest first."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _hidden(name: str, value: Any) -> Any:
    if name in HEADER_PARAMS and isinstance(value, Mapping):
        return hide_secrets(value)
    if value is None or isinstance(value, SECRET_TYPES) or not is_secret_name(name):
        return value
    return SecretStr(value) if isinstance(value, str) else Secret(value)


def _revealed(name: str, value: Any) -> Any:
    if name in HEADER_PARAMS and isinstance(value, Mapping):
        return reveal_secrets(value)
    return value.get_secret_value() if isinstance(value, SECRET_TYPES) else value
