"""The ``ensemble`` predictor: a weighted average of other predictors' predictions.

Like scikit-learn's ``VotingRegressor``, it fits every member on the same dataset and
averages their predicted quality matrices (every member has the same ``models_`` order,
the dataset's). ``members`` are JSON specs such as ``{"kind": "knn", "params": {"k":
"auto"}}``, so the settings stay JSON-serialisable; the default is the tuned kNN with the
``mf`` two-tower model. ``weights=None`` averages the members equally; a list gives fixed
non-negative weights, normalised to sum to 1. (Convex weights chosen on a held-out slice
of the training prompts, as in stacking, were tried and left out: on the shared sets they
did not beat the equal average.)

A saved ensemble is a directory like any predictor's (``config.json``, with the member
weights in ``weights.safetensors``) plus ``members/0``, ``members/1``, ... each saved by its
own kind, so any kind can be a member; nesting ensembles is not supported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from routoo.data.dataset import RoutingDataset
from routoo.errors import ConfigError, PredictorLoadError
from routoo.predictors.base import Predictor
from routoo.predictors.registry import load_predictor, make_predictor, predictor_class
from routoo.prompts import Prompt, PromptView

DEFAULT_MEMBERS: tuple[dict[str, Any], ...] = (
    {"kind": "knn", "params": {"k": "auto"}},
    {"kind": "mf", "params": {}},
)
MEMBERS_DIR = "members"

MemberSpec = tuple[str, dict[str, Any]]


class EnsemblePredictor(Predictor):
    """The weighted mean of several predictors' predicted qualities.

    ``members``: a list of ``{"kind": KIND, "params": {...}}`` (None: tuned knn and mf).
    Every member reads the ensemble's ``prompt_view``. ``weights``: None (equal) or one
    non-negative number per member. ``fit`` checks both, and every member's settings,
    before training any member. After ``fit``, ``members_`` holds the fitted members and
    ``weights_`` their normalised weights.
    """

    kind = "ensemble"

    def __init__(
        self,
        members: list[dict[str, Any]] | None = None,
        weights: list[float] | None = None,
        prompt_view: PromptView = "last_user",
    ) -> None:
        super().__init__(prompt_view=prompt_view)
        self.members = members
        self.weights = weights

    # --------------------------------------------------------------------------- fit
    def _validate_params(self) -> None:
        """The declared constraints, then the members (each with its own settings) and the weights."""
        super()._validate_params()
        self._normalised_weights(len(self._members()))

    def _fit(self, dataset: RoutingDataset) -> None:
        members = self._members()
        self.weights_ = self._normalised_weights(len(members))
        self.members_ = [member.fit(dataset) for member in members]

    def _members(self) -> list[Predictor]:
        """Unfitted members with valid settings; ``ConfigError`` naming the first bad one."""
        members = []
        for index, (kind, params) in enumerate(self._member_specs()):
            try:
                member = make_predictor(kind, **{**params, "prompt_view": self.prompt_view})
                member._validate_params()
            except ConfigError as error:
                raise ConfigError(f"ensemble member {index}: {error}") from error
            members.append(member)
        return members

    def _member_specs(self) -> list[MemberSpec]:
        """``(kind, params)`` of every member; ``ConfigError`` naming the first bad spec."""
        members = list(DEFAULT_MEMBERS) if self.members is None else self.members
        if not isinstance(members, list | tuple) or not members:
            raise ConfigError(
                f"members must be a non-empty list of {{'kind': ..., 'params': ...}}, not {members!r}"
            )
        specs = []
        for index, member in enumerate(members):
            where = f"ensemble member {index}"
            if not isinstance(member, dict) or "kind" not in member or set(member) - {"kind", "params"}:
                raise ConfigError(f"{where} must be a dict with 'kind' and optional 'params', not {member!r}")
            kind, params = member["kind"], member.get("params") or {}
            if kind == self.kind:
                raise ConfigError(f"{where}: ensembles cannot be nested; list the inner members instead")
            try:
                predictor_class(kind)
            except ConfigError as error:
                raise ConfigError(f"{where}: {error}") from error
            if not isinstance(params, dict):
                raise ConfigError(f"{where}: params must be a dict of settings, not {params!r}")
            if params.get("prompt_view", self.prompt_view) != self.prompt_view:
                raise ConfigError(
                    f"{where}: every member reads the ensemble's prompt_view {self.prompt_view!r}; "
                    "set prompt_view on the ensemble, not on a member"
                )
            specs.append((kind, dict(params)))
        return specs

    def _normalised_weights(self, n_members: int) -> np.ndarray:
        """The members' weights summing to 1; ``ConfigError`` saying what is wrong with ``weights``."""
        if self.weights is None:
            return np.full(n_members, 1.0 / n_members)
        if not isinstance(self.weights, list | tuple):
            raise ConfigError(
                f"weights must be None or a list of numbers, one per member, not {self.weights!r}"
            )
        weights = list(self.weights)
        if len(weights) != n_members:
            raise ConfigError(
                f"weights has {len(weights)} entries for {n_members} members; give one per member"
            )
        if any(isinstance(w, bool) or not isinstance(w, int | float) or not np.isfinite(w) for w in weights):
            raise ConfigError(f"weights must be finite numbers, not {self.weights!r}")
        array = np.asarray(weights, dtype=np.float64)
        if (array < 0).any() or array.sum() <= 0:
            raise ConfigError(f"weights must be non-negative and not all zero, not {self.weights!r}")
        return array / array.sum()

    # ----------------------------------------------------------------------- predict
    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        # A text is a prompt that every view reads as itself.
        prompts: list[Prompt] = list(texts)
        predictions = np.stack([member.predict(prompts) for member in self.members_])
        return np.tensordot(self.weights_, predictions, axes=1)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write each member into ``members/INDEX`` with its own kind's ``save``, then the ensemble."""
        self._check_fitted()
        path = Path(directory)
        for index, member in enumerate(self.members_):
            member.save(path / MEMBERS_DIR / str(index))
        return super().save(path)  # config.json, written last, marks a complete directory

    @classmethod
    def load(cls, directory: str | Path) -> EnsemblePredictor:
        """Read a directory written by ``save``: the ensemble's config and weights, then every member."""
        path = Path(directory)
        predictor = super().load(path)
        members = []
        for index, (kind, params) in enumerate(predictor._member_specs()):
            folder = path / MEMBERS_DIR / str(index)
            member = load_predictor(folder)
            expected = {**params, "prompt_view": predictor.prompt_view}
            settings = member.get_params()
            if member.kind != kind or any(settings.get(name) != value for name, value in expected.items()):
                raise PredictorLoadError(
                    f"{folder} holds a {member.kind!r} predictor with settings {settings}, "
                    f"but the ensemble's member {index} is {kind!r} with {expected}"
                )
            if (
                member.models_ != predictor.models_
                or member.train_fingerprint_ != predictor.train_fingerprint_
            ):
                raise PredictorLoadError(
                    f"{folder} was not trained with the ensemble: its models or training data differ"
                )
            members.append(member)
        predictor.members_ = members
        return predictor

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"weights": self.weights_}, {"member_kinds": [member.kind for member in self.members_]}

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        # The members are read from their folders by ``load``; here the settings meet the weights.
        try:
            specs = self._member_specs()
        except ConfigError as error:
            raise ValueError(str(error)) from error
        self.weights_ = tensors["weights"].astype(np.float64)
        if self.weights_.shape != (len(specs),):
            raise ValueError(f"weights has shape {self.weights_.shape} for {len(specs)} members")
        if extra.get("member_kinds") != [kind for kind, _ in specs]:
            raise ValueError(f"member kinds {extra.get('member_kinds')!r} do not match the members setting")
