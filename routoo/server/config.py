"""The server's settings: ``ServerConfig`` and its parts, read from a TOML (or JSON) file.

Every part is a frozen ``Settings`` value object (``routoo.policy``), so a bad value is a
``ConfigError`` naming the field. A file is TOML (``tomllib``, in Python's standard
library) unless its name ends in ``.json``; relative paths in it (the ledger, the
decision log, a predictor directory) are read from the file's folder. Every setting has a
default, so an empty file (or no file) serves the shipped predictor over ``DEFAULT_MODELS``
with ``DEFAULT_PRESETS``, a ledger and a decision log in the working directory, and no keys.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, PositiveFloat, PositiveInt, SecretStr, model_validator

from routoo.budget import BudgetMode
from routoo.errors import ConfigError
from routoo.faults import FaultPolicy
from routoo.policy import ModelName, NonNegativeNumber, RoutingPolicy, Settings
from routoo.pool import ModelSpec
from routoo.prompts import PromptView

# The README's pool: the shipped predictor knows gpt-4o, and gpt-4o-mini from a prior.
DEFAULT_MODELS: tuple[str, ...] = ("gpt-4o", "gpt-4o-mini")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9._:/@-]+$")]


class PresetSettings(Settings):
    """A router preset, called by name as the request's ``model``: a routing policy over the pool.

    ``predictor_reads``: what of the conversation the predictor reads, ``"last_user"`` (the
    human's latest request, not the agent's system prompt, tool results or earlier turns)
    or ``"conversation"`` (every turn). Cost and context always count every message.
    """

    policy: RoutingPolicy = Field(default_factory=RoutingPolicy)
    predictor_reads: PromptView = "last_user"
    description: str = ""


DEFAULT_PRESETS: dict[str, PresetSettings] = {
    "routoo": PresetSettings(description="quality against cost at the router's default trade-off"),
    "routoo-cheap": PresetSettings(
        policy=RoutingPolicy(quality_floor=0.5),
        description="the cheapest model predicted to reach a quality of 0.5",
    ),
    "routoo-best": PresetSettings(
        policy=RoutingPolicy(tradeoff=0.0), description="the best predicted model, whatever it costs"
    ),
}


class KeySettings(Settings):
    """An API key: its name (in the ledger and logs), its bearer secret and its budget.

    ``budget_usd`` None: spend is recorded, never refused. ``budget_mode``: ``"hard"``
    refuses a call whose worst-case cost does not fit what is left; ``"soft"`` steers
    toward cheaper models as money runs out (``routoo.budget``). ``models``: the presets
    and pool models the key may call (None: all).
    """

    name: Name
    secret: SecretStr = Field(min_length=8)
    budget_usd: NonNegativeNumber | None = None
    budget_mode: BudgetMode = "hard"
    models: tuple[ModelName, ...] | None = None

    @classmethod
    def _owner(cls, fields: Mapping[str, Any]) -> str:
        return f"key {fields.get('name', '')!r}"


class SessionSettings(Settings):
    """Session-aware routing (``routoo.server.sessions``).

    ``header``: the request header naming a conversation; without it, a conversation is
    known by its system message and first user message. ``sticky`` False routes every turn
    afresh. ``max_sessions``: how many conversations are remembered (least recent forgotten).
    """

    header: str = Field(default="x-routoo-session", min_length=1)
    sticky: bool = True
    max_sessions: PositiveInt = 10_000


class LimitSettings(Settings):
    """Request limits: body size (413 above it), messages per request, seconds per routed call."""

    max_request_bytes: PositiveInt = 4 * 1024 * 1024
    max_messages: PositiveInt = 4096
    request_timeout_s: PositiveFloat = 300.0


class LedgerSettings(Settings):
    """The spend ledger's SQLite file; ``synchronous`` ``"full"`` syncs every write to disk (no
    spend lost even to a power cut), ``"normal"`` survives a crash of the server but not of the machine."""

    path: Path = Path("routoo-ledger.sqlite")
    synchronous: str = Field(default="full", pattern="^(full|normal)$")


class ServerConfig(Settings):
    """Everything ``routoo serve`` needs; see docs/server.md for the file format.

    ``models``: the pool (litellm names or ``ModelSpec`` fields). ``predictor``: a saved
    predictor's directory (None: the shipped one). ``presets``: name -> ``PresetSettings``.
    ``keys``: the API keys; none: no key is asked for, allowed only on a loopback host.
    ``log``: the decision log's SQLite file (None, ``false`` in a file: no log);
    ``record_text`` keeps prompts and answers in it. ``faults``: the router's ``FaultPolicy``.
    ``scripted``: register ``routoo.testing``'s scripted provider, so ``scripted/*`` models
    answer offline.
    """

    models: tuple[str | ModelSpec, ...] = DEFAULT_MODELS
    predictor: Path | None = None
    presets: dict[Name, PresetSettings] = Field(default_factory=lambda: dict(DEFAULT_PRESETS))
    keys: tuple[KeySettings, ...] = ()
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    log: Path | None = Path("routoo-decisions.sqlite")
    record_text: bool = False
    faults: FaultPolicy = Field(default_factory=FaultPolicy)
    max_fallbacks: int = Field(default=2, ge=0)
    scripted: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    @model_validator(mode="before")
    @classmethod
    def _hide_secrets(cls, fields: Any) -> Any:
        """The keys' secrets wrapped before validation, so that no error message quotes one."""
        keys = fields.get("keys") if isinstance(fields, Mapping) else None
        if not isinstance(keys, list | tuple):
            return fields
        hidden = [
            {**key, "secret": SecretStr(key["secret"])}
            if isinstance(key, Mapping) and isinstance(key.get("secret"), str)
            else key
            for key in keys
        ]
        return {**fields, "keys": hidden}

    def __init__(self, **fields: Any) -> None:
        super().__init__(**fields)
        self._check_names()  # outside pydantic, whose errors would quote the whole input

    def _check_names(self) -> None:
        pool = self.pool_names
        if not pool:
            raise ConfigError("ServerConfig: the pool needs at least one model")
        if clash := sorted(set(self.presets) & set(pool)):
            raise ConfigError(f"ServerConfig: presets {clash} have the names of pool models")
        for name, preset in self.presets.items():
            policy = preset.policy
            named = {*(policy.allow or ()), *(policy.deny or ()), *([policy.model] if policy.model else [])}
            if unknown := sorted(named - set(pool)):
                raise ConfigError(f"ServerConfig: preset {name!r} names {unknown}, not in the pool {pool}")
        names = [key.name for key in self.keys]
        if repeated := sorted({name for name in names if names.count(name) > 1}):
            raise ConfigError(f"ServerConfig: key names {repeated} are given more than once")
        secrets = [key.secret.get_secret_value() for key in self.keys]
        if len(set(secrets)) != len(secrets):
            raise ConfigError("ServerConfig: two keys have the same secret")
        callable_names = {*self.presets, *pool}
        for key in self.keys:
            if unknown := sorted(set(key.models or ()) - callable_names):
                raise ConfigError(
                    f"ServerConfig: key {key.name!r} may call {unknown}: neither presets nor pool models"
                )

    @property
    def pool_names(self) -> list[str]:
        """The pool models' names, as requests pin them."""
        return [model if isinstance(model, str) else model.name for model in self.models]

    def check_exposure(self, host: str | None = None) -> None:
        """``ConfigError`` unless the server asks for keys or listens on a loopback host only."""
        host = self.host if host is None else host
        if not self.keys and host not in LOOPBACK_HOSTS:
            raise ConfigError(
                f"the config has no keys: the server would take anyone's calls on {host}; "
                "add [[keys]] or listen on 127.0.0.1"
            )


def load_config(path: str | Path | None) -> ServerConfig:
    """The ``ServerConfig`` in the TOML (or ``.json``) file at ``path``; None: every default."""
    if path is None:
        return ServerConfig()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read the server config {path}: {error}") from None
    try:
        fields = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"the server config {path} is not valid {_format(path)}: {error}") from None
    if not isinstance(fields, dict):
        raise ConfigError(f"the server config {path} must hold a table of settings")
    return ServerConfig(**_paths_from(fields, path.parent))


def _format(path: Path) -> str:
    return "JSON" if path.suffix == ".json" else "TOML"


def _paths_from(fields: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``fields`` with its relative file paths read from ``folder`` (the config file's)."""
    fields = dict(fields)
    if fields.get("log") is False:  # TOML has no null: `log = false` turns the decision log off
        fields["log"] = None
    for name in ("predictor", "log"):
        if isinstance(fields.get(name), str):
            fields[name] = folder / Path(fields[name]).expanduser()
    ledger = fields.get("ledger")
    if isinstance(ledger, dict) and isinstance(ledger.get("path"), str):
        fields["ledger"] = {**ledger, "path": folder / Path(ledger["path"]).expanduser()}
    return fields
