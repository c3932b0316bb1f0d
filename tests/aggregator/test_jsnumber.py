"""Values print like JavaScript's String(number); slices round like Math.round."""

from __future__ import annotations

import math

import pytest

from aggregator.jsnumber import js_round, js_str


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (6.0, "6"),
        (6, "6"),
        (-0.0, "0"),
        (1e16, "10000000000000000"),
        (1.2345678901234567e20, "123456789012345670000"),
        (1e21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (1e-6, "0.000001"),
        (1.234e-6, "0.000001234"),
        (1e-7, "1e-7"),
        (-2.5e-10, "-2.5e-10"),
        (0.30000000000000004, "0.30000000000000004"),
        (3.3333333333333335, "3.3333333333333335"),
        (2.8722813232690143, "2.8722813232690143"),
        (123456789012.5, "123456789012.5"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (math.nan, "NaN"),
    ],
)
def test_js_str(value, text):
    assert js_str(value) == text


@pytest.mark.parametrize(
    ("value", "rounded"),
    [(8.5, 9), (2.5, 3), (-2.5, -2), (0.49999999999999994, 0), (1.2, 1), (0.0, 0)],
)
def test_js_round_ties_toward_positive_infinity(value, rounded):
    assert js_round(value) == rounded
