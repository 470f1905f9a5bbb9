"""The model catalog: one identity per model, whatever name a data set or a user gives it.

Data sets name the same model their own way (RouteLLM's ``mistralai/Mixtral-8x7B-Instruct-v0.1``
is RouterBench's ``mistralai/mixtral-8x7b-chat`` and MMLU-Pro's ``Mixtral-8x7B-Instruct-v0.1``),
and users write ``gpt-4o``, ``openai/gpt-4o`` or an Azure deployment with a ``base_model``.
The catalog (``routoo/data/catalog.json``, bundled) gives each model one ``CatalogEntry``:
its identity ``name`` (litellm's model name where litellm has the model, otherwise its
Hugging Face ``org/model`` id), the ``litellm_name`` to ask litellm about it, every
``aliases`` spelling, and the public facts about it. Prices are not facts of the catalog:
they come from ``routoo.pricing.PriceBook`` (ask it for ``entry.litellm_name``).

A name resolves to an entry when it equals the entry's name, litellm name or an alias,
ignoring case; failing that, a leading provider prefix that litellm would strip
(``openai/``, ``azure/``, ``together_ai/``, ...) is dropped and the rest looked up again.
Only that last step loads litellm (for its provider list), so the data loaders, whose
names match exactly, never do. See docs/catalog.md.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictBool

from routoo.errors import ConfigError
from routoo.policy import Settings

CATALOG_FILE = Path(__file__).parent / "data" / "catalog.json"
_FILE_KEYS = frozenset({"_about", "models"})
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: object) -> object:
    """``YYYY-MM-DD`` as a date; pydantic alone would also read a number as a Unix time."""
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError as error:
            raise ValueError(f"not a calendar date ({error})") from None
    if value is None or isinstance(value, datetime.date):
        return value
    raise ValueError("must be an ISO date string YYYY-MM-DD or null")


Name = Annotated[str, Field(min_length=1, strict=True)]
IsoDate = Annotated[datetime.date | None, BeforeValidator(_iso_date)]


class CatalogEntry(Settings):
    """One model: its identity, how litellm and the data sets name it, and what is public about it.

    ``parameters_b`` is in billions (a mixture of experts: all experts), ``release_date`` the
    day it was first publicly available; either is None where unknown, as is ``open_weights``
    for an API name whose model changes between releases. ``datasets`` are the named sets
    holding its records; ``scores`` are public aggregate scores in (0, 1) by benchmark (as
    ``routoo.predictors.onboarded.BENCHMARKS`` names them), from ``scores_source``: a model
    the predictor does not know starts from a prior they move. ``note`` says why a name is,
    or is not, an alias.
    """

    name: Name
    litellm_name: Name | None = None
    aliases: tuple[Name, ...] = ()
    provider: Name
    family: Name | None = None
    parameters_b: Annotated[float, Field(gt=0, strict=True)] | None = None
    release_date: IsoDate = None
    open_weights: StrictBool | None = None
    datasets: tuple[Name, ...] = ()
    scores: dict[Name, Annotated[float, Field(gt=0, lt=1, strict=True)]] = Field(default_factory=dict)
    scores_source: Name | None = None
    note: Name | None = None

    @classmethod
    def _owner(cls, fields: Mapping[str, Any]) -> str:
        return f"catalog entry {fields.get('name')!r}"

    @property
    def names(self) -> tuple[str, ...]:
        """Every spelling that resolves to this entry: its name, litellm name and aliases."""
        litellm_name = () if self.litellm_name is None else (self.litellm_name,)
        return (self.name, *litellm_name, *self.aliases)


class ModelCatalog:
    """Catalog entries, indexed by every spelling of every model (ignoring case).

    A spelling shared by two entries is a ``ConfigError`` naming both: a name must mean one model.
    """

    def __init__(self, entries: Iterable[CatalogEntry]) -> None:
        self._entries = tuple(entries)
        self._by_spelling: dict[str, CatalogEntry] = {}
        for entry in self._entries:
            for spelling in entry.names:
                owner = self._by_spelling.setdefault(spelling.casefold(), entry)
                if owner is not entry:
                    raise ConfigError(
                        f"catalog entry {entry.name!r}: {spelling!r} already names entry {owner.name!r}"
                    )

    @classmethod
    def from_file(cls, path: str | Path) -> ModelCatalog:
        """A catalog read from a JSON file ``{"models": [entry, ...]}`` (``_about`` may describe it)."""
        path = Path(path)
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"catalog file {path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"catalog file {path} is not valid JSON: {error}") from None
        if not isinstance(content, dict) or not isinstance(content.get("models"), list):
            raise ConfigError(f"catalog file {path} must hold an object with a 'models' list")
        unknown = set(content) - _FILE_KEYS
        if unknown:
            raise ConfigError(
                f"catalog file {path}: unknown keys {sorted(unknown)}; use {sorted(_FILE_KEYS)}"
            )
        entries = []
        for index, entry in enumerate(content["models"]):
            if not isinstance(entry, dict):
                raise ConfigError(f"catalog file {path}: model #{index} is not an object: {entry!r}")
            try:
                entries.append(CatalogEntry(**entry))
            except ConfigError as error:
                raise ConfigError(f"{path}, model #{index}: {error}") from None
        try:
            return cls(entries)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None

    def resolve(self, name: str, *, base_model: str | None = None) -> CatalogEntry | None:
        """The entry ``name`` (or, first, the ``base_model`` it is deployed from) stands for; None if unknown.

        ``base_model`` is what litellm's ``litellm_params["base_model"]`` says an Azure-style
        deployment runs: it names the model where the deployment's own name need not.
        """
        for candidate in (base_model, name):
            entry = None if not candidate else self._lookup(candidate)
            if entry is not None:
                return entry
        return None

    def canonical_name(self, name: str) -> str:
        """The identity ``name`` resolves to, or ``name`` unchanged when the catalog does not know it."""
        entry = self.resolve(name)
        return name if entry is None else entry.name

    def family_members(self, name: str, among: Iterable[str]) -> list[str]:
        """The names in ``among`` of models in ``name``'s family (empty when it has none)."""
        entry = self.resolve(name)
        if entry is None or not entry.family:
            return []
        return [
            other
            for other in among
            if (found := self.resolve(other)) is not None and found.family == entry.family
        ]

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"ModelCatalog({len(self._entries)} models)"

    def _lookup(self, name: str) -> CatalogEntry | None:
        spelling = name.strip().casefold()
        while True:
            entry = self._by_spelling.get(spelling)
            if entry is not None or "/" not in spelling:
                return entry
            prefix, rest = spelling.split("/", 1)
            if prefix not in litellm_providers():
                return None
            spelling = rest  # ``openrouter/openai/gpt-4o``: each provider prefix in turn


@lru_cache(maxsize=1)
def default_catalog() -> ModelCatalog:
    """The bundled catalog, ``routoo/data/catalog.json``, read once."""
    return ModelCatalog.from_file(CATALOG_FILE)


@lru_cache(maxsize=1)
def litellm_providers() -> frozenset[str]:
    """The provider prefixes litellm strips from a model name (``openai``, ``azure``, ...), lower case."""
    from routoo._litellm import litellm

    return frozenset(
        str(getattr(provider, "value", provider)).casefold() for provider in litellm.provider_list
    )
