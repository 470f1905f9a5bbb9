"""A saved predictor's folder is bound to its weights and its files: hashes, paths inside the folder,
finite weights, safetensors only."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from routoo.embeddings import SentenceEncoder, default_model_path
from routoo.errors import ConfigError, PredictorError, PredictorLoadError
from routoo.predictors import DEFAULT_PREDICTOR_DIR, KNNPredictor, MFPredictor, load_default, load_predictor
from routoo.predictors._folder import HASHES_KEY, resolved_paths

PROMPTS = ["How many apples are left?", "Write a haiku about snow."]


@pytest.fixture
def saved(planted_dataset, tmp_path: Path) -> Path:
    return KNNPredictor(k=3, encoder="static").fit(planted_dataset(n=30)).save(tmp_path / "knn")


def sha256(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


def edit_config(folder: Path, **changes: object) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def rewrite_weights(folder: Path, change) -> None:
    """Change the weights with ``change(tensors)`` and record their new hash, as a re-save would."""
    tensors = load_file(folder / "weights.safetensors")
    change(tensors)
    save_file(tensors, folder / "weights.safetensors")
    edit_config(folder, **{HASHES_KEY: {"weights.safetensors": sha256(folder / "weights.safetensors")}})


# ------------------------------------------------------------------------------ hashes
def test_save_records_the_hash_of_the_weights(saved: Path) -> None:
    config = json.loads((saved / "config.json").read_text())
    assert config[HASHES_KEY] == {"weights.safetensors": sha256(saved / "weights.safetensors")}


def test_swapped_weights_are_refused_naming_the_file(saved: Path, planted_dataset, tmp_path: Path) -> None:
    other = KNNPredictor(k=3, encoder="static").fit(planted_dataset(n=30, seed=1)).save(tmp_path / "other")
    shutil.copyfile(other / "weights.safetensors", saved / "weights.safetensors")
    with pytest.raises(
        PredictorLoadError, match=r"knn/weights\.safetensors .*not the file this predictor was saved"
    ):
        load_predictor(saved)


def test_edited_weights_are_refused(saved: Path) -> None:
    tensors = load_file(saved / "weights.safetensors")
    tensors["quality"] = np.ascontiguousarray(1.0 - tensors["quality"])  # still valid safetensors
    save_file(tensors, saved / "weights.safetensors")
    with pytest.raises(PredictorLoadError, match="changed or swapped after saving"):
        KNNPredictor.load(saved)


def test_a_listed_file_that_is_gone_or_outside_is_refused(saved: Path) -> None:
    recorded = json.loads((saved / "config.json").read_text())[HASHES_KEY]
    edit_config(saved, **{HASHES_KEY: {**recorded, "extra.safetensors": "0" * 64}})
    with pytest.raises(
        PredictorLoadError, match=r"extra\.safetensors is missing or corrupted: it is not there"
    ):
        load_predictor(saved)
    edit_config(saved, **{HASHES_KEY: {"../elsewhere.safetensors": "0" * 64}})
    with pytest.raises(PredictorLoadError, match="leads out of the predictor's folder"):
        load_predictor(saved)


def test_a_folder_saved_without_hashes_loads_with_a_warning(saved: Path) -> None:
    config = json.loads((saved / "config.json").read_text())
    del config[HASHES_KEY]
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="records no hashes of its weights"):
        loaded = load_predictor(saved)
    np.testing.assert_array_equal(loaded.predict(PROMPTS), KNNPredictor.load(saved).predict(PROMPTS))


def test_the_shipped_default_is_bound_to_its_weights() -> None:
    config = json.loads((DEFAULT_PREDICTOR_DIR / "config.json").read_text())
    assert config[HASHES_KEY] == {
        name: sha256(DEFAULT_PREDICTOR_DIR / name)
        for name in ("weights.safetensors", "references.safetensors")
    }
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*records no hashes")
        load_default()


def test_an_ensemble_binds_its_own_weights_and_each_member_its_own(planted_dataset, tmp_path: Path) -> None:
    from routoo.predictors import EnsemblePredictor

    members = [{"kind": "knn", "params": {"k": k, "encoder": "static"}} for k in (3, 5)]
    folder = EnsemblePredictor(members=members).fit(planted_dataset(n=30)).save(tmp_path / "ensemble")
    assert list(json.loads((folder / "config.json").read_text())[HASHES_KEY]) == ["weights.safetensors"]
    tensors = load_file(folder / "members" / "1" / "weights.safetensors")
    save_file(
        {**tensors, "quality": np.zeros_like(tensors["quality"])},
        folder / "members" / "1" / "weights.safetensors",
    )
    with pytest.raises(PredictorLoadError, match=r"members/1/weights\.safetensors is missing or corrupted"):
        load_predictor(folder)


# ---------------------------------------------------------------------- finite weights
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_naming_the_tensor(
    planted_dataset, tmp_path: Path, bad: float
) -> None:
    folder = (
        MFPredictor(encoder="static", epochs=2, hidden=0, dim=4).fit(planted_dataset(n=30)).save(tmp_path)
    )

    def spoil(tensors: dict[str, np.ndarray]) -> None:
        tensors["model_bias"] = tensors["model_bias"].copy()
        tensors["model_bias"][1] = bad

    rewrite_weights(folder, spoil)
    with pytest.raises(PredictorLoadError, match=r"tensor 'model_bias' holds NaN or infinite values"):
        load_predictor(folder)


def test_save_refuses_non_finite_weights(planted_dataset, tmp_path: Path) -> None:
    predictor = MFPredictor(encoder="static", epochs=2, hidden=0, dim=4).fit(planted_dataset(n=30))
    predictor.weights_["model_vectors"][0, 0] = np.nan
    with pytest.raises(PredictorError, match=r"tensor 'model_vectors' holds NaN"):
        predictor.save(tmp_path)


def test_knn_keeps_missing_records_as_nan_but_refuses_infinity(planted_dataset, tmp_path: Path) -> None:
    dataset = planted_dataset(n=30)
    dataset.quality[::3, 0] = np.nan  # records missing, as in real data
    folder = KNNPredictor(k=3, encoder="static").fit(dataset).save(tmp_path)
    assert np.isnan(load_file(folder / "weights.safetensors")["quality"]).any()
    load_predictor(folder).predict(PROMPTS)

    def spoil(tensors: dict[str, np.ndarray]) -> None:
        tensors["quality"] = np.where(np.isnan(tensors["quality"]), np.inf, tensors["quality"]).astype(
            np.float32
        )

    rewrite_weights(folder, spoil)
    with pytest.raises(PredictorLoadError, match=r"tensor 'quality' holds NaN or infinite values"):
        load_predictor(folder)


# ----------------------------------------------------------------------------- paths
def test_an_encoder_from_elsewhere_is_copied_in_and_read_from_the_folder(
    planted_dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Named as the bundled folder, so that Routoo's shipped static table serves it (no distilling).
    source = tmp_path / "elsewhere" / default_model_path().name
    shutil.copytree(default_model_path(), source)
    (source / "pytorch_model.bin").write_bytes(b"a pickle is never copied")
    predictor = KNNPredictor(k=3, encoder=f"static:{source}").fit(planted_dataset(n=30))
    folder = predictor.save(tmp_path / "saved")
    config = json.loads((folder / "config.json").read_text())
    assert config["params"]["encoder"] == f"static:files/encoder/{source.name}"
    copied = folder / "files" / "encoder" / source.name
    assert (copied / "model.safetensors").is_file() and not (copied / "pytorch_model.bin").exists()
    assert config[HASHES_KEY][f"files/encoder/{source.name}/model.safetensors"] == sha256(
        copied / "model.safetensors"
    )

    shutil.rmtree(source)  # the folder needs nothing outside it, wherever it is loaded from
    monkeypatch.chdir(tmp_path)
    loaded = load_predictor("saved")
    assert loaded.encoder == f"static:{copied.resolve()}"
    np.testing.assert_allclose(loaded.predict(PROMPTS), predictor.predict(PROMPTS))


@pytest.mark.parametrize(
    ("encoder", "message"),
    [
        ("/etc", "is not a path relative to the predictor's folder"),
        ("static:/usr/share", "is not a path relative to the predictor's folder"),
        ("../elsewhere", "leads out of the predictor's folder"),
        ("static:files/../../elsewhere", "leads out of the predictor's folder"),
    ],
)
def test_a_config_path_leading_out_of_the_folder_is_refused(saved: Path, encoder: str, message: str) -> None:
    config = json.loads((saved / "config.json").read_text())
    edit_config(saved, params={**config["params"], "encoder": encoder})
    with pytest.raises(PredictorLoadError, match=rf"config\.json: encoder='{encoder}' {message}"):
        load_predictor(saved)


def test_a_link_out_of_the_folder_is_refused(saved: Path, tmp_path: Path) -> None:
    (saved / "files").mkdir()
    (saved / "files" / "encoder").symlink_to(default_model_path())
    config = json.loads((saved / "config.json").read_text())
    edit_config(saved, params={**config["params"], "encoder": "static:files/encoder"})
    with pytest.raises(PredictorLoadError, match="leads out of the predictor's folder"):
        load_predictor(saved)


def test_the_gguf_path_of_causal_lm_resolves_inside_the_folder(tmp_path: Path) -> None:
    config_file = tmp_path / "config.json"
    assert resolved_paths({"gguf_path": "files/gguf_path/model.gguf"}, tmp_path, config_file) == {
        "gguf_path": str(tmp_path.resolve() / "files" / "gguf_path" / "model.gguf")
    }
    with pytest.raises(PredictorLoadError, match=r"gguf_path='\.\./model\.gguf' leads out"):
        resolved_paths({"gguf_path": "../model.gguf"}, tmp_path, config_file)
    assert resolved_paths({"gguf_path": None, "encoder": "static"}, tmp_path, config_file) == {
        "gguf_path": None,
        "encoder": "static",
    }


# ------------------------------------------------------------------------ safetensors
def test_an_encoder_folder_with_only_pickled_weights_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "pickled-encoder"
    shutil.copytree(default_model_path(), folder, ignore=shutil.ignore_patterns("*.safetensors"))
    (folder / "pytorch_model.bin").write_bytes(b"not loaded: a pickle could run anything")
    with pytest.raises(ConfigError, match=r"pickled-encoder has no safetensors weights"):
        SentenceEncoder(folder, cache_dir=False).encode(["hello"])
