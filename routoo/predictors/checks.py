"""``check_predictor``: the contract every predictor keeps, checked as scikit-learn's ``check_estimator``.

Every built-in kind passes it, and a predictor written outside Routoo (a ``Predictor``
subclass) can be checked the same way before the ``Router`` or ``routoo.evaluate`` use it::

    from routoo.predictors import check_predictor
    check_predictor(MyPredictor())                       # or a function that makes one
    fitted = check_predictor(lambda: MyPredictor(alpha=0.5), my_dataset)

The checks, in order: settings (the constructor stores each setting as given, under its
own name, as JSON values, and the declared constraints name settings the predictor has);
``get_params``/``set_params``/``clone``; an unfitted predictor refuses to predict or
save; bad settings and input are refused; ``fit`` returns the predictor, keeps its
settings, records the dataset's models and fingerprint and leaves the caller's random
state alone; ``predict`` answers a prompts x models array of finite qualities in [0, 1],
the same twice, reads a chat's last user turn and refuses a lone string; ``save`` writes
safetensors and JSON (nothing pickled) that ``load`` turns back into the same
predictions; ``load`` refuses another kind's directory, damaged weights and configs that
do not match their weights. The first check that fails raises ``AssertionError`` naming it.
"""

from __future__ import annotations

import copy
import json
import random
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from routoo.data.dataset import RoutingDataset
from routoo.errors import ConfigError, DataError, PredictorError, PredictorLoadError
from routoo.predictors.base import CONFIG_FILE, WEIGHTS_FILE, Predictor
from routoo.predictors.registry import PREDICTOR_CLASSES, load_predictor, predictor_class
from routoo.prompts import Prompt

T = TypeVar("T")

# Files that could hold pickled objects: a saved predictor holds none of them.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# Prompts of the shapes predict must take: plain, non-ASCII, long, chat with multimodal content.
PROBE_PROMPTS: list[Prompt] = [
    "What is 17 times 23?",
    "¿Cuánto es 7 × 8? Responde en español.",
    " ".join(["A long prompt that goes on past what an encoder reads."] * 30),
    [
        {"role": "system", "content": "You describe pictures."},
        {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"}]},
    ],
]
# Training prompts also predicted on, at most, when no prompts are given.
DATASET_PROMPTS = 40


def check_predictor(
    predictor: Predictor | Callable[[], Predictor],
    dataset: RoutingDataset | None = None,
    *,
    prompts: Sequence[Prompt] | None = None,
    fit: bool = True,
) -> Predictor:
    """Check that a predictor keeps Routoo's predictor contract; ``AssertionError`` naming the failed check.

    ``predictor`` is an unfitted predictor (the checks work on clones of it) or a function
    that makes one. ``dataset`` is what it is fitted on (default: ``toy_dataset()``), and
    ``prompts`` what it predicts, besides ``PROBE_PROMPTS`` (default: the first 40 of the
    dataset's). With ``fit=False`` only the checks that need no training run. Returns the
    predictor it fitted (unfitted with ``fit=False``), for further checks of what it learnt.
    """
    make: Callable[[], Predictor] = predictor.clone if isinstance(predictor, Predictor) else predictor
    sample = _run("making the predictor", "check_predictor", make)
    assert isinstance(sample, Predictor), f"check_predictor: {sample!r} is not a Predictor"
    label = f"check_predictor({type(sample).__name__})"

    _run("settings", label, lambda: _check_settings(make))
    _run("get_params, set_params and clone", label, lambda: _check_params_api(make))
    _run("unfitted use", label, lambda: _check_unfitted_use(make))
    if not fit:
        return sample
    data = toy_dataset() if dataset is None else dataset
    _run("bad settings and input", label, lambda: _check_bad_input(make, data))
    fitted = _run("fit", label, lambda: _check_fit(make, data))
    asked = [*PROBE_PROMPTS, *(data.prompts[:DATASET_PROMPTS] if prompts is None else prompts)]
    scores = _run("predict", label, lambda: _check_predict(fitted, asked))
    with tempfile.TemporaryDirectory(prefix="routoo-check-") as folder:
        directory = Path(folder) / "saved"
        _run("save and load round trip", label, lambda: _check_round_trip(fitted, directory, asked, scores))
        _run("load refuses what does not fit", label, lambda: _check_load_refusals(fitted, directory))
    return fitted


def toy_dataset() -> RoutingDataset:
    """40 prompts and three models: ``counter`` is right on sums, ``rhymer`` on poems, ``generalist`` on both.

    One record is missing, as in real data.
    """
    topics = ("rivers", "owls", "snow", "bread", "clocks")
    prompts = [
        f"What is {row} plus {3 * row + 7}?"
        if row % 2 == 0
        else f"Write a short poem about {topics[row % 5]}."
        for row in range(40)
    ]
    is_sum = np.arange(40) % 2 == 0
    quality = np.stack([is_sum, ~is_sum, np.ones(40, dtype=bool)], axis=1).astype(float)
    quality[3, 2] = np.nan
    return RoutingDataset(
        name="check-predictor-toy",
        prompts=prompts,
        models=["counter", "rhymer", "generalist"],
        quality=quality,
    )


# ------------------------------------------------------------------------------ the checks
def _check_settings(make: Callable[[], Predictor]) -> None:
    predictor = make()
    params = predictor.get_params()
    attributes = sorted(vars(predictor))
    assert attributes == sorted(params), (
        f"__init__ must store its settings and nothing else: it set {attributes}, its settings are "
        f"{sorted(params)} (compute in fit, into attributes ending in '_')"
    )
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise AssertionError(f"settings must be JSON values (config.json holds them): {error}") from error
    rebuilt = type(predictor)(**params)
    for name, value in params.items():
        assert getattr(rebuilt, name) is value, f"__init__ must store {name!r} as given, not a changed copy"
    assert rebuilt.get_params() == params, "a predictor made from get_params() must have the same settings"
    undeclared = sorted(set(predictor._parameter_constraints) - set(params))
    assert not undeclared, f"_parameter_constraints names {undeclared}, which are not settings"
    predictor._validate_params()


def _check_params_api(make: Callable[[], Predictor]) -> None:
    predictor = make()
    params = predictor.get_params()
    assert predictor.get_params(deep=True) == params, "get_params(deep=True) must list the same settings"
    twin = predictor.clone()
    assert type(twin) is type(predictor) and twin is not predictor, "clone must make a new predictor"
    assert twin.get_params() == params, "clone must have the same settings"
    for name, value in twin.get_params().items():
        if isinstance(value, list | dict):
            assert value is not params[name], f"clone must copy setting {name!r}, not share it"
    assert predictor.set_params() is predictor, "set_params must return the predictor"
    for name in params:
        marker = object()
        predictor.set_params(**{name: marker})
        assert predictor.get_params()[name] is marker, f"set_params({name}=...) must change {name!r}"
    predictor.set_params(**params)
    assert predictor.get_params() == params, "set_params(**get_params()) must restore the settings"
    _expect(
        ConfigError,
        "no_such_setting",
        lambda: predictor.set_params(no_such_setting=1),
        "set_params(no_such_setting=1)",
    )


def _check_unfitted_use(make: Callable[[], Predictor]) -> None:
    predictor = make()
    _expect(PredictorError, "not fitted", lambda: predictor.predict(["What is 2 + 2?"]), "predict before fit")
    _expect(PredictorError, "not fitted", lambda: predictor.models, "models before fit")
    with tempfile.TemporaryDirectory(prefix="routoo-check-") as folder:
        _expect(PredictorError, "not fitted", lambda: predictor.save(folder), "save before fit")


def _check_bad_input(make: Callable[[], Predictor], dataset: RoutingDataset) -> None:
    if "prompt_view" in make().get_params():
        _expect(
            ConfigError,
            "prompt_view",
            lambda: make().set_params(prompt_view="no-such-view").fit(dataset),
            "fit with prompt_view='no-such-view'",
        )
    _expect(DataError, "RoutingDataset", lambda: make().fit("not a dataset"), "fit('not a dataset')")  # type: ignore[arg-type]


def _check_fit(make: Callable[[], Predictor], dataset: RoutingDataset) -> Predictor:
    predictor = make()
    params = copy.deepcopy(predictor.get_params())
    before = _random_states()
    assert predictor.fit(dataset) is predictor, "fit must return the predictor itself"
    after = _random_states()
    changed = [source for source, state in before.items() if after[source] != state]
    assert not changed, (
        f"fit changed the caller's random state ({', '.join(changed)}): seed a generator of its own, "
        "or fork torch's (torch.random.fork_rng)"
    )
    assert predictor.get_params() == params, "fit must not change the settings"
    if predictor.extends_base_models:
        missing = [model for model in dataset.models if model not in predictor.models_]
        assert not missing, f"models_ lacks the dataset's {missing}"
    else:
        assert predictor.models_ == list(dataset.models), f"models_ is {predictor.models_}, not the dataset's"
    assert predictor.train_fingerprint_ == dataset.fingerprint(), "train_fingerprint_ is not the dataset's"
    return predictor


def _check_predict(predictor: Predictor, prompts: list[Prompt]) -> np.ndarray:
    n_models = len(predictor.models_)
    scores = predictor.predict(prompts)
    assert isinstance(scores, np.ndarray), f"predict returned a {type(scores).__name__}, not an array"
    assert scores.shape == (len(prompts), n_models), (
        f"predict gave shape {scores.shape} for {len(prompts)} prompts"
    )
    assert np.isfinite(scores).all() and scores.min() >= 0.0 and scores.max() <= 1.0, (
        "scores are not in [0, 1]"
    )
    _assert_same(predictor.predict(prompts), scores, "predict gave other scores for the same prompts")
    assert predictor.predict([]).shape == (0, n_models), "predict([]) must have shape (0, models)"
    if predictor.prompt_view == "last_user":
        text = "How many legs do three spiders have?"
        chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
        plain, from_chat = predictor.predict([text, chat])
        _assert_same(from_chat, plain, "a chat must score as its last user turn", atol=1e-6)
    _expect(
        PredictorError, "not one string", lambda: predictor.predict("What is 2 + 2?"), "predict('one prompt')"
    )
    return scores


def _check_round_trip(
    predictor: Predictor, directory: Path, prompts: list[Prompt], scores: np.ndarray
) -> None:
    assert Path(predictor.save(directory)) == directory, "save must return the directory it wrote"
    assert (directory / CONFIG_FILE).is_file() and (directory / WEIGHTS_FILE).is_file(), (
        f"save must write {CONFIG_FILE} and {WEIGHTS_FILE}"
    )
    pickled = [str(file) for file in directory.rglob("*") if file.suffix in PICKLE_SUFFIXES]
    assert not pickled, f"save wrote files that may hold pickles: {pickled}"
    for load in _loaders(predictor):
        loaded = load(directory)
        assert type(loaded) is type(predictor), f"load gave a {type(loaded).__name__}"
        assert loaded.get_params() == predictor.get_params(), "the loaded settings differ"
        for name in ("models_", "train_fingerprint_", "output_tokens_"):
            assert getattr(loaded, name) == getattr(predictor, name), f"the loaded {name} differs"
        _assert_same(loaded.predict(prompts), scores, "the loaded predictor predicts differently")


def _check_load_refusals(predictor: Predictor, directory: Path) -> None:
    kind = predictor.kind
    _expect(
        PredictorLoadError,
        f"holds a '{kind}' predictor",
        lambda: _OtherKind.load(directory),
        "another kind's load",
    )
    weights = directory / WEIGHTS_FILE
    saved_weights = weights.read_bytes()
    damages: dict[str, Callable[[], Any]] = {
        "missing": weights.unlink,
        "garbage": lambda: weights.write_bytes(b"this is not safetensors"),
        "truncated": lambda: weights.write_bytes(saved_weights[: len(saved_weights) // 2]),
    }
    for damage, apply in damages.items():
        apply()
        _expect(
            PredictorLoadError,
            "missing or corrupted",
            lambda: type(predictor).load(directory),
            f"load of {damage} weights",
        )
        weights.write_bytes(saved_weights)
    config_file = directory / CONFIG_FILE
    saved_config = config_file.read_text()
    edits: dict[str, Callable[[dict[str, Any]], Any]] = {
        "another format version": lambda config: config.update(format_version=999),
        "a model the weights lack": lambda config: config["models"].append("extra-model"),
        "an unknown kind": lambda config: config.update(routoo_predictor="no-such-kind"),
    }
    for change, edit in edits.items():
        config = json.loads(saved_config)
        edit(config)
        config_file.write_text(json.dumps(config))
        for load in _loaders(predictor):
            _expect(
                PredictorLoadError, "", lambda load=load: load(directory), f"load of a config with {change}"
            )
    config_file.write_text(saved_config)


# ----------------------------------------------------------------------------- helpers
def _run(name: str, label: str, check: Callable[[], T]) -> T:
    """``check()``; any failure becomes an ``AssertionError`` naming the check."""
    try:
        return check()
    except AssertionError as error:
        raise AssertionError(f"{label}: {name}: {error}") from error
    except Exception as error:
        raise AssertionError(f"{label}: {name}: {type(error).__name__}: {error}") from error


def _expect(error: type[Exception], pattern: str, action: Callable[[], object], doing: str) -> None:
    """``action()`` must raise ``error`` with a message matching ``pattern``."""
    try:
        action()
    except error as raised:
        assert re.search(pattern, str(raised)), f"{doing} raised {raised!r}, whose message lacks {pattern!r}"
        return
    except Exception as other:
        raise AssertionError(f"{doing} raised {other!r}, not a {error.__name__}") from other
    raise AssertionError(f"{doing} did not raise a {error.__name__}")


def _assert_same(actual: np.ndarray, expected: np.ndarray, message: str, atol: float = 0.0) -> None:
    """``actual`` equals ``expected`` (to ``atol``); else ``message`` and the largest difference."""
    assert actual.shape == expected.shape, f"{message} (shape {actual.shape}, not {expected.shape})"
    difference = np.max(np.abs(actual - expected), initial=0.0)
    assert difference <= atol, f"{message} (largest difference {difference:g})"


def _loaders(predictor: Predictor) -> list[Callable[[Path], Predictor]]:
    """The class's own ``load``, and ``load_predictor`` where the registry names that class."""
    loaders: list[Callable[[Path], Predictor]] = [type(predictor).load]
    if predictor.kind in PREDICTOR_CLASSES and predictor_class(predictor.kind) is type(predictor):
        loaders.append(load_predictor)
    return loaders


def _random_states() -> dict[str, Any]:
    """The global random states a predictor might touch: Python's, numpy's and (once imported) torch's."""
    numpy_state = np.random.get_state()
    states: dict[str, Any] = {
        "random": random.getstate(),
        "numpy.random": (numpy_state[0], numpy_state[1].tobytes(), *numpy_state[2:]),
    }
    if "torch" in sys.modules:
        states["torch"] = sys.modules["torch"].random.get_rng_state().numpy().tobytes()
    return states


class _OtherKind(Predictor):
    """A kind no saved directory holds: its ``load`` must refuse every other kind's."""

    kind = "check-predictor-other-kind"

    def _fit(self, dataset: RoutingDataset) -> None:
        raise NotImplementedError

    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        raise NotImplementedError

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        raise NotImplementedError
