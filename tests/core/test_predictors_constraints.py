"""The declared constraints on predictor settings (``routoo.predictors.constraints``)."""

from __future__ import annotations

import numpy as np
import pytest

from routoo.predictors.constraints import integer, number, one_of


@pytest.mark.parametrize(
    ("constraint", "accepted", "refused"),
    [
        pytest.param(integer(minimum=1), [1, 7, np.int64(3)], [0, -2, 2.0, True, "3", None], id="integer"),
        pytest.param(integer(minimum=0), [0, 5], [-1, 0.5, False], id="non-negative-integer"),
        pytest.param(
            number(above=0),
            [1e-9, 3, 0.5, np.float32(2)],
            [0, -1.0, float("nan"), float("inf"), True, "1"],
            id="positive-number",
        ),
        pytest.param(number(at_least=0), [0, 0.0, 2], [-1e-9, float("nan"), False], id="non-negative-number"),
        pytest.param(
            one_of("bce", "pairwise"), ["bce", "pairwise"], ["hinge", ["bce"], None, 1], id="one-of"
        ),
        pytest.param(integer(minimum=1) | one_of("auto"), [5, "auto"], [0, "many", 2.5], id="either"),
    ],
)
def test_constraints_accept_and_refuse(constraint, accepted: list, refused: list) -> None:
    assert all(constraint.accepts(value) for value in accepted)
    assert not any(constraint.accepts(value) for value in refused)


def test_descriptions_say_what_the_value_must_be() -> None:
    assert integer(minimum=1).description == "an integer >= 1"
    assert number(above=0).description == "a finite number > 0"
    assert number(at_least=0).description == "a finite number >= 0"
    assert one_of("a", "b").description == "one of ('a', 'b')"
    assert (integer(minimum=1) | one_of("auto")).description == "an integer >= 1 or 'auto'"
