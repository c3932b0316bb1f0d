"""Timer statistics: the reference's formulas, summed in the same order so the floats match.

Sums are sequential over the ascending values (`itertools.accumulate`), never `sum()`:
Python >= 3.12 compensates float sums, and the reference does not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from itertools import accumulate
from operator import mul

from .config import HistogramRule
from .jsnumber import js_round, js_str

Fields = list[tuple[str, float]]


def threshold_suffix(p: float) -> str:
    """`99.9` -> `99_9`, `-10` -> `top10` (first `.` and first `-` only, like the reference)."""
    return js_str(p).replace(".", "_", 1).replace("-", "top", 1)


def bin_name(limit: float | str) -> str:
    return "bin_" + (limit if isinstance(limit, str) else js_str(limit)).replace(".", "_", 1)


def histogram_bins(key: str, rules: Sequence[HistogramRule]) -> tuple[float | str, ...]:
    """The first rule whose metric is a substring of the key wins, even with empty bins."""
    for rule in rules:
        if rule.metric in key:
            return rule.bins
    return ()


def timer_fields(
    values: Sequence[float],
    count: float,
    interval_s: float,
    thresholds: Sequence[float],
    bins: Sequence[float | str] = (),
) -> Fields:
    """All fields of one timer for one flush, in the reference's order.

    `count` is the sample-rate scaled count.
    """
    if not values:
        return [("count_ps", 0), ("count", 0)]  # the reference's order for an idle timer
    values = sorted(values)
    n = len(values)
    low, high = values[0], values[-1]
    cumulative = list(accumulate(values))
    cumulative_squares = list(accumulate(map(mul, values, values)))
    out: Fields = []
    for p in thresholds:
        if n == 1:
            m, boundary, total, squares = 1, low, low, low * low
        else:
            m = js_round(abs(p) / 100 * n)
            if m == 0:
                continue
            if p > 0:
                boundary = values[m - 1]
                total, squares = cumulative[m - 1], cumulative_squares[m - 1]
            else:
                boundary = values[n - m]
                total, squares = cumulative[-1], cumulative_squares[-1]
                if m < n:  # the reference reads index -1 here and reports NaN
                    total -= cumulative[n - m - 1]
                    squares -= cumulative_squares[n - m - 1]
        suffix = threshold_suffix(p)
        out.append((f"count_{suffix}", m))
        out.append((f"mean_{suffix}", total / m))
        out.append((f"{'upper' if p > 0 else 'lower'}_{suffix}", boundary))
        out.append((f"sum_{suffix}", total))
        out.append((f"sum_squares_{suffix}", squares))
    total = cumulative[-1]
    mean = total / n
    diffs = 0.0
    for x in values:
        diffs += (x - mean) * (x - mean)
    mid = n // 2
    median = values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2
    out += [
        ("std", math.sqrt(diffs / n)),
        ("upper", high),
        ("lower", low),
        ("count", count),
        ("count_ps", count / interval_s),
        ("sum", total),
        ("sum_squares", cumulative_squares[-1]),
        ("mean", mean),
        ("median", median),
    ]
    i = 0
    for limit in bins:
        start = i
        if isinstance(limit, str):  # "inf", the only string the config lets through
            i = n
        else:
            while i < n and values[i] < limit:
                i += 1
        out.append((f"histogram.{bin_name(limit)}", i - start))
    return out


_PERCENT_FIELD = re.compile(r"_(top)?\d+(_\d+)?$")


def keep_fields(fields: Fields, wanted: Sequence[str]) -> Fields:
    """calculated_timer_metrics: keep listed fields; `<field>_percent` stands for thresholds."""
    if not wanted:
        return fields
    keep = set(wanted)
    return [
        (name, value)
        for name, value in fields
        if (name.startswith("histogram.") and "histogram" in keep)
        or _PERCENT_FIELD.sub("_percent", name) in keep
    ]
