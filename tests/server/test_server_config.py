"""The server config: files, defaults and the errors that name what is wrong."""

from __future__ import annotations

import json

import pytest

from routoo.errors import ConfigError
from routoo.server import DEFAULT_PRESETS, ServerConfig, load_config

TOML = """
models = ["scripted/small", {name = "scripted/large", like = "gpt-4o"}]
scripted = true
log = false

[ledger]
path = "spend/ledger.sqlite"

[presets.fast]
policy = {tradeoff = 50.0, deny = ["scripted/large"]}
predictor_reads = "conversation"

[[keys]]
name = "team-a"
secret = "sk-team-a-secret"
budget_usd = 5.0
models = ["fast"]
"""


def test_a_toml_file_is_read_with_paths_beside_it(tmp_path) -> None:
    path = tmp_path / "routoo.toml"
    path.write_text(TOML)
    config = load_config(path)
    assert config.pool_names == ["scripted/small", "scripted/large"]
    assert config.ledger.path == tmp_path / "spend" / "ledger.sqlite" and config.log is None
    assert config.presets["fast"].policy.deny == ("scripted/large",)
    assert config.presets["fast"].predictor_reads == "conversation"
    key = config.keys[0]
    assert key.budget_usd == 5.0 and key.secret.get_secret_value() == "sk-team-a-secret"
    assert "sk-team-a-secret" not in repr(config) + str(config) + config.model_dump_json()


def test_a_json_file_and_the_defaults() -> None:
    config = ServerConfig()
    assert config.presets == DEFAULT_PRESETS and config.keys == () and config.host == "127.0.0.1"


def test_json_is_read_too(tmp_path) -> None:
    path = tmp_path / "routoo.json"
    path.write_text(json.dumps({"models": ["scripted/small"], "port": 9000}))
    assert load_config(path).port == 9000


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"presets": {"scripted/small": {}}}, "have the names of pool models"),
        ({"presets": {"p": {"policy": {"allow": ["gpt-9"]}}}}, "preset 'p' names ['gpt-9']"),
        ({"keys": [{"name": "a", "secret": "sk-12345678", "models": ["nope"]}]}, "key 'a' may call ['nope']"),
        (
            {"keys": [{"name": "a", "secret": "sk-12345678"}, {"name": "b", "secret": "sk-12345678"}]},
            "same secret",
        ),
        ({"keys": [{"name": "a", "secret": "short"}]}, "key 'a': secret"),
        ({"keys": [{"name": "a", "secret": "sk-12345678", "budget_usd": -1}]}, "budget_usd"),
        ({"limits": {"max_request_bytes": 0}}, "max_request_bytes"),
        ({"presets": {"p": {"predictor_reads": "everything"}}}, "predictor_reads"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_config_names_what_is_wrong(fields, words) -> None:
    with pytest.raises(ConfigError) as raised:
        ServerConfig(**{"models": ["scripted/small"], **fields})
    assert words in str(raised.value)
    assert "sk-12345678" not in str(raised.value)


def test_a_bad_file_is_a_config_error(tmp_path) -> None:
    path = tmp_path / "routoo.toml"
    path.write_text("models = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_without_keys_only_loopback_is_served() -> None:
    config = ServerConfig(models=["scripted/small"])
    config.check_exposure("127.0.0.1")
    with pytest.raises(ConfigError, match="no keys"):
        config.check_exposure("0.0.0.0")
    ServerConfig(models=["scripted/small"], keys=[{"name": "a", "secret": "sk-12345678"}]).check_exposure(
        "0.0.0.0"
    )


def test_importing_the_server_package_loads_neither_fastapi_nor_litellm() -> None:
    import subprocess
    import sys

    code = (
        "import sys, routoo.server; "
        "print([m for m in ('fastapi', 'uvicorn', 'starlette', 'litellm') if m in sys.modules])"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
