"""RoutingPolicy: one declaration and validation of the routing settings."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from routoo.errors import ConfigError
from routoo.policy import RoutingPolicy, check_non_negative, describe_validation_error
from routoo.selector import check_non_negative as check_non_negative_from_selector


def test_the_defaults_leave_every_setting_off() -> None:
    policy = RoutingPolicy()
    assert policy.model_dump() == {
        "tradeoff": None,
        "quality_floor": None,
        "max_cost": None,
        "allow": None,
        "deny": None,
        "max_latency_s": None,
        "model": None,
    }


def test_settings_are_read_as_floats_and_tuples() -> None:
    policy = RoutingPolicy(
        tradeoff=np.float32(2), quality_floor=1, max_cost=np.int64(3), allow=["a", "b"], deny={"c"}, model="a"
    )
    assert (policy.tradeoff, policy.quality_floor, policy.max_cost) == (2.0, 1.0, 3.0)
    assert isinstance(policy.max_cost, float)
    assert (policy.allow, policy.deny, policy.model) == (("a", "b"), ("c",), "a")


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("tradeoff", -1, "tradeoff=-1"),
        ("tradeoff", "high", "tradeoff='high'"),
        ("tradeoff", "0.5", "tradeoff='0.5'"),  # a number, not text that looks like one
        ("tradeoff", float("inf"), "tradeoff=inf"),
        ("quality_floor", 1.5, "quality_floor=1.5"),
        ("quality_floor", -0.1, "quality_floor=-0.1"),
        ("max_cost", float("nan"), "max_cost=nan"),
        ("max_cost", 10**400, "max_cost=1000000000"),
        ("max_latency_s", True, "max_latency_s=True"),
        ("allow", "gpt-4o", "allow='gpt-4o'"),  # a bare string is not a list of names
        ("deny", ["gpt-4o", 4], "deny.1=4"),
        ("model", "", "model=''"),
        ("budget", 5, "budget=5"),  # not a setting
    ],
)
def test_bad_settings_name_the_field_and_the_value(field: str, value: object, shown: str) -> None:
    with pytest.raises(ConfigError, match="RoutingPolicy") as caught:
        RoutingPolicy(**{field: value})
    assert shown in str(caught.value)


def test_a_policy_is_a_frozen_value() -> None:
    policy = RoutingPolicy(tradeoff=1, deny=["a"])
    assert policy == RoutingPolicy(tradeoff=1.0, deny=("a",))
    assert hash(policy) == hash(RoutingPolicy(tradeoff=1.0, deny=("a",)))
    with pytest.raises(ValidationError, match="frozen"):
        policy.tradeoff = 2  # type: ignore[misc]


def test_coerce_takes_a_policy_a_mapping_or_none() -> None:
    policy = RoutingPolicy(max_cost=0.1)
    assert RoutingPolicy.coerce(policy) is policy
    assert RoutingPolicy.coerce({"max_cost": 0.1}) == policy
    assert RoutingPolicy.coerce(None) == RoutingPolicy()
    with pytest.raises(ConfigError, match="max_cost"):
        RoutingPolicy.coerce({"max_cost": -1})
    with pytest.raises(ConfigError, match="mapping"):
        RoutingPolicy.coerce(0.5)  # type: ignore[arg-type]


def test_merged_replaces_only_the_fields_the_override_sets() -> None:
    base = RoutingPolicy(tradeoff=1, quality_floor=0.5, deny=["a"])
    merged = base.merged({"tradeoff": 2, "quality_floor": None, "max_cost": 0.01})
    assert merged == RoutingPolicy(tradeoff=2, quality_floor=0.5, max_cost=0.01, deny=["a"])
    assert base.merged(RoutingPolicy(model="b")) == RoutingPolicy(
        tradeoff=1, quality_floor=0.5, deny=["a"], model="b"
    )
    assert base.merged(None) is base
    assert base.merged({"tradeoff": None}) is base
    with pytest.raises(ConfigError, match="quality_floor"):
        base.merged({"quality_floor": 2})


def test_filter_reason_applies_allow_deny_and_latency() -> None:
    policy = RoutingPolicy(allow=["a", "b"], deny=["b"], max_latency_s=2)
    assert policy.filter_reason("a", 1.0) is None
    assert policy.filter_reason("a", None) is None  # unknown latency is not held against a model
    assert "allow" in policy.filter_reason("c", 1.0)
    assert "deny" in policy.filter_reason("b", 1.0)
    assert "latency" in policy.filter_reason("a", 3.0)


def test_check_non_negative_reads_the_same_numbers() -> None:
    assert check_non_negative_from_selector is check_non_negative  # the old import path still works
    assert check_non_negative(np.float32(1.5), "limit_usd") == 1.5
    assert check_non_negative(None, "limit_usd") is None
    for bad in (-1, True, "1", float("inf"), None):
        with pytest.raises(ConfigError, match=r"limit_usd must be a finite number >= 0, not"):
            check_non_negative(bad, "limit_usd", optional=False)


def test_validation_errors_read_as_one_line() -> None:
    class Spec(BaseModel):
        name: str
        size: int

    with pytest.raises(ValidationError) as caught:
        Spec(size="big")  # type: ignore[call-arg]
    message = describe_validation_error(caught.value, "Spec 'x'")
    assert message.startswith("Spec 'x': ")
    assert "name: Field required" in message  # a missing field has no value to show
    assert "size='big': Input should be a valid integer" in message
