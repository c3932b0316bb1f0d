"""Evaluate Grafana alert rules against a Graphite render API, as Grafana's backend does.

One evaluation at time t: each Graphite query is POSTed like Grafana's Go datasource (one
target, no aliasSub, keys sorted, `from`/`until` = t minus the rule's relativeTimeRange); every
returned series is an alert instance, labelled by its tags, or, when several series carry no
tags, by its name (`__name__`), as Grafana's server-side expressions label them; `reduce`
turns each series into a number and `threshold` into 1 (alerting) or 0 (normal); a missing
number is NoData.

A rule's state at `now` needs its history: Grafana evaluates every `interval` and fires once
the condition has held for the pending period (`for`). `check` replays those evaluations,
from `now - ceil(for / interval) * interval` to `now`, on what the render API holds now, and
runs Grafana's state machine over them: Normal -> Pending -> Alerting, NoData and errors mapped
through the rule's noDataState and execErrState. An instance whose series is missing from an
evaluation keeps its state; missing two intervals after it was last seen, it is resolved
(Normal, "missing series") and then forgotten, as Grafana's stale-state handling does. Data
that arrived late (a replayed spool) counts at the time it describes, where Grafana had seen
silence.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from .rules import Node, Query, Reduce, Rule, Threshold

NORMAL, PENDING, ALERTING, NO_DATA, ERROR = "Normal", "Pending", "Alerting", "NoData", "Error"
Labels = tuple[tuple[str, str], ...]


class QueryError(RuntimeError):
    """The render API did not answer a query usably (Grafana: the rule's execution error)."""


class RenderAPI(Protocol):
    def render(self, target: str, start: int, end: int, max_data_points: int) -> object:
        """The parsed JSON of one /render answer."""


def backend_render_form(target: str, start: int, end: int, max_data_points: int) -> str:
    """The body Grafana's Go backend POSTs to /render: Go's url.Values.Encode(), keys sorted,
    `+` for spaces, one target and no aliasSub."""
    fields = {
        "format": "json",
        "from": start,
        "maxDataPoints": max_data_points,
        "target": target,
        "until": end,
    }
    return urllib.parse.urlencode(sorted(fields.items()))


class HttpRenderAPI:
    """A render API over HTTP, asked exactly as Grafana's backend asks it."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def render(self, target: str, start: int, end: int, max_data_points: int) -> object:
        request = urllib.request.Request(
            f"{self.url}/render",
            data=backend_render_form(target, start, end, max_data_points).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = one_line(exc.read().decode(errors="replace"))
            raise QueryError(f"render API answered {exc.code}: {detail}") from None
        except (OSError, ValueError) as exc:
            raise QueryError(f"render API {self.url}: {exc}") from None


def one_line(body: str, limit: int = 160) -> str:
    """What an error page says, on one line: a render API's 500 is often a whole Python
    traceback, whose last line names the error; a table row must not be broken by it."""
    lines = [line.strip() for line in re.sub(r"<[^>]+>", " ", body).splitlines()]
    text = " ".join(next((line for line in reversed(lines) if line), "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fix_interval_format(target: str) -> str:
    """Grafana's rewrite of quoted intervals: '5m' means minutes to Grafana, months to Graphite."""
    target = re.sub(r"'(\d+)m'", r"'\1min'", target)
    return re.sub(r"'(\d+)M'", r"'\1mon'", target)


@dataclass(frozen=True)
class Series:
    labels: Labels
    values: list[float | None]


@dataclass(frozen=True)
class Number:
    labels: Labels
    value: float | None


class _NoData:
    """A query that returned no series at all, and everything computed from it."""


NO_SERIES = _NoData()
Value = list[Series] | list[Number] | _NoData


@dataclass(frozen=True)
class Result:
    """One alert instance after one evaluation."""

    labels: Labels
    state: str  # Normal, Alerting, NoData or Error
    value: float | None = None  # what the condition's threshold compared
    error: str = ""


NAME_LABEL = "__name__"
MISSING_SERIES = "missing series"


def parse_series(answer: object) -> list[Series]:
    """Grafana's reading of a render answer: labels from `tags`, timestamps required; series
    without tags, when there are several, labelled by their names."""
    if not isinstance(answer, list):
        raise QueryError("render answer is not a JSON array")
    series = []
    names = []
    for item in answer:
        labels = {}
        for name, tag in (item.get("tags") or {}).items():
            value = item.get("target", "") if name == "name" else tag
            if isinstance(value, bool):
                continue
            if isinstance(value, str):
                labels[name] = value
            elif isinstance(value, int | float):
                labels[name] = format(value, "g")
        values = []
        for point in item.get("datapoints", []):
            if len(point) != 2 or point[1] is None:
                raise QueryError("failed to parse data point timestamp")
            values.append(None if point[0] is None else float(point[0]))
        series.append(Series(tuple(sorted(labels.items())), values))
        names.append(str(item.get("target", "")))
    if len(series) > 1:
        series = [
            Series(((NAME_LABEL, name),), s.values) if not s.labels else s
            for s, name in zip(series, names, strict=True)
        ]
    return series


def reduce_values(
    values: list[float | None], reducer: str, mode: str, replace: float
) -> float | None:
    """Grafana's reduce expression (pkg/expr/mathexp/reduce.go), with its three modes."""

    def bad(v: float | None) -> bool:
        return v is None or math.isnan(v) or math.isinf(v)

    if mode == "dropNN":
        values = [v for v in values if not bad(v)]
    elif mode == "replaceNN":
        values = [replace if bad(v) else v for v in values]
    # Past the strict NaN check below, `present` is `values` (no None is left in it).
    present = [v for v in values if v is not None]
    strict_nan = len(present) < len(values) or any(math.isnan(v) for v in present)
    if reducer == "count":
        result: float | None = float(len(values))
    elif reducer == "last":
        result = values[-1] if values else math.nan
    elif strict_nan:
        result = math.nan
    elif reducer == "sum":
        result = math.fsum(present)
    elif reducer == "mean":
        result = math.fsum(present) / len(present) if present else math.nan
    elif not present:
        result = math.nan
    elif reducer == "min":
        result = min(present)
    elif reducer == "max":
        result = max(present)
    else:  # median
        ordered = sorted(present)
        mid = len(ordered) // 2
        result = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    if result is not None and math.isnan(result):
        if mode == "dropNN":
            return None
        if mode == "replaceNN":
            return replace
    return result


def threshold_holds(kind: str, params: tuple[float, ...], value: float) -> bool:
    """Grafana's threshold predicates; a NaN compares false (true for `ne`), as in Go."""
    a = params[0]
    b = params[1] if len(params) > 1 else math.nan
    return {
        "gt": lambda: value > a,
        "lt": lambda: value < a,
        "eq": lambda: value == a,
        "ne": lambda: value != a,
        "gte": lambda: value >= a,
        "lte": lambda: value <= a,
        "within_range": lambda: a < value < b,
        "outside_range": lambda: value < a or value > b,
        "within_range_included": lambda: a <= value <= b,
        "outside_range_included": lambda: value <= a or value >= b,
    }[kind]()


def evaluate_once(rule: Rule, api: RenderAPI, at: float) -> list[Result]:
    """The rule's instances at one evaluation time (unix seconds)."""
    computed: dict[str, Value] = {}

    def value_of(ref_id: str) -> Value:
        if ref_id not in computed:
            computed[ref_id] = _compute(rule.nodes[ref_id], value_of, api, at)
        return computed[ref_id]

    try:
        condition = value_of(rule.condition)
    except QueryError as exc:
        return [Result((), ERROR, error=str(exc))]
    if isinstance(condition, _NoData) or not condition:
        return [Result((), NO_DATA)]
    node = rule.nodes[rule.condition]
    inputs: dict[Labels, float | None] = {}
    if isinstance(node, Threshold):
        reduced = computed.get(node.expression)
        if isinstance(reduced, list):
            inputs = {n.labels: n.value for n in reduced if isinstance(n, Number)}
    results = []
    for item in condition:
        if not isinstance(item, Number):
            return [Result((), ERROR, error=f"condition {rule.condition} is not a number")]
        value = inputs.get(item.labels, item.value)
        if item.value is None:
            results.append(Result(item.labels, NO_DATA, value))
        else:
            results.append(Result(item.labels, NORMAL if item.value == 0 else ALERTING, value))
    labels = [r.labels for r in results]
    if len(set(labels)) != len(labels):
        return [
            Result(
                (),
                ERROR,
                error="series cannot be told apart (several with the same name and tags): "
                "name each differently",
            )
        ]
    return results


def _compute(node: Node, value_of: Callable[[str], Value], api: RenderAPI, at: float) -> Value:
    if isinstance(node, Query):
        now = int(at)
        answer = api.render(
            fix_interval_format(node.target),
            now - int(node.start),
            now - int(node.end),
            node.max_data_points,
        )
        series = parse_series(answer)
        return series if series else NO_SERIES
    source = value_of(node.expression)
    if isinstance(source, _NoData):
        return NO_SERIES
    if isinstance(node, Reduce):
        if any(isinstance(s, Number) for s in source):
            raise QueryError(f"{node.ref_id}: reduce needs series, {node.expression} is numbers")
        return [
            Number(s.labels, reduce_values(s.values, node.reducer, node.mode, node.replace_with))
            for s in source
            if isinstance(s, Series)
        ]
    numbers = []
    for item in source:
        if not isinstance(item, Number):
            raise QueryError(f"{node.ref_id}: threshold needs numbers: reduce {node.expression}")
        holds = item.value is not None and threshold_holds(node.kind, node.params, item.value)
        numbers.append(Number(item.labels, None if item.value is None else float(holds)))
    return numbers


@dataclass(frozen=True)
class InstanceState:
    labels: Labels
    state: str  # Normal, Pending, Alerting, NoData or Error
    since: float  # when this state began (Pending: when the condition first held)
    value: float | None = None
    error: str = ""


@dataclass(frozen=True)
class RuleState:
    rule: Rule
    at: float
    instances: list[InstanceState]

    @property
    def state(self) -> str:
        """The rule's worst instance, as Grafana's rule list shows it."""
        order = (ERROR, ALERTING, NO_DATA, PENDING, NORMAL)
        states = {i.state for i in self.instances} or {NORMAL}
        return next(s for s in order if s in states)


def _transition(
    rule: Rule, before: InstanceState | None, result: Result, at: float
) -> InstanceState:
    kind = result.state
    mapped = {NO_DATA: rule.no_data_state, ERROR: rule.exec_err_state}.get(kind)
    if mapped == "KeepLast":
        if before is None:
            kind = NORMAL
        else:
            return InstanceState(
                before.labels, before.state, before.since, result.value, result.error
            )
    elif mapped in ("Alerting", "OK"):
        kind = ALERTING if mapped == "Alerting" else NORMAL
    # No earlier instance: Normal since now (`began` is read only when `previous` came from one).
    previous, began = (before.state, before.since) if before else (NORMAL, at)
    if kind == ALERTING:
        if previous == ALERTING:
            state, since = ALERTING, began
        elif previous == PENDING and at - began >= rule.pending:
            state, since = ALERTING, at
        elif previous == PENDING:
            state, since = PENDING, began
        else:
            state, since = (ALERTING if rule.pending <= 0 else PENDING), at
    else:
        state = kind
        since = began if previous == kind else at
    return InstanceState(result.labels, state, since, result.value, result.error)


STALE_AFTER = 2  # evaluation intervals without its series before an instance is resolved


def evaluation_times(rule: Rule, now: float) -> list[float]:
    """The evaluations that decide the state at `now`: enough to cover the pending period and
    the two intervals after which a missing series is resolved."""
    steps = math.ceil(rule.pending / rule.interval - 1e-9) if rule.pending > 0 else 0
    steps += STALE_AFTER
    return [now - k * rule.interval for k in range(steps, -1, -1)]


def rule_state(rule: Rule, api: RenderAPI, now: float) -> RuleState:
    instances: dict[Labels, InstanceState] = {}
    seen: dict[Labels, float] = {}  # when each instance last had a result
    for at in evaluation_times(rule, now):
        current: dict[Labels, InstanceState] = {}
        for result in evaluate_once(rule, api, at):
            current[result.labels] = _transition(rule, instances.get(result.labels), result, at)
            seen[result.labels] = at
        for labels, before in instances.items():
            if labels in current or before.error == MISSING_SERIES:
                continue  # present, or resolved at the previous evaluation: forgotten
            if at - seen[labels] >= STALE_AFTER * rule.interval - 1e-9:
                current[labels] = InstanceState(labels, NORMAL, at, None, MISSING_SERIES)
            else:
                current[labels] = before  # missing once: kept as it was
        instances = current
    return RuleState(rule, now, list(instances.values()))


def check(rules: Iterable[Rule], api: RenderAPI, now: float | None = None) -> list[RuleState]:
    now = time.time() if now is None else now
    return [rule_state(rule, api, now) for rule in rules]
