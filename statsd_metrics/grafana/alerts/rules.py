"""Grafana's alert-rule provisioning files, read the way Grafana reads them.

Grafana expands `$VAR` and `${VAR}` from its environment (`$$` is a literal dollar sign) in a
rule's own fields (title, `for`, labels, annotations) and the group's, but never inside
`data[].model`: query and expression models go to the datasource as written, so a `$` there
reaches the render API as it is. `load` does the same, except that a variable that is not set
is an error here, where Grafana would quietly put in an empty string. Durations use Grafana's
parser (whole numbers with a unit: `30s`, `5m`, `1h30m`; no `1.5m`), and every query needs
its `relativeTimeRange`, as Grafana requires.

Only what `evaluate` can run is accepted: Graphite queries, `reduce` and `threshold`
expressions. Anything else is a RuleError naming the rule, not a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ...graphite import CONF_DIR

RULES_DIR = CONF_DIR / "grafana" / "provisioning" / "alerting"
EXPRESSION_UID = "__expr__"
REDUCERS = ("last", "mean", "sum", "min", "max", "count", "median")
REDUCE_MODES = ("strict", "dropNN", "replaceNN")
THRESHOLDS = (
    "gt", "lt", "eq", "ne", "gte", "lte",
    "within_range", "outside_range", "within_range_included", "outside_range_included",
)  # fmt: skip
NO_DATA_STATES = ("NoData", "Alerting", "OK", "KeepLast")
ERROR_STATES = ("Error", "Alerting", "OK", "KeepLast")
ENV_VAR = re.compile(r"\$(\$|\{(\w+)\}|(\w+))")
DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
UNIT_SECONDS = {
    "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000,
}  # fmt: skip


class RuleError(ValueError):
    """A rule file that cannot be evaluated; the message names the file and rule."""


@dataclass(frozen=True)
class Query:
    """A Graphite query over [now - start, now - end] (relativeTimeRange, seconds)."""

    ref_id: str
    target: str
    start: float
    end: float = 0.0
    max_data_points: int = 43200


@dataclass(frozen=True)
class Reduce:
    ref_id: str
    expression: str
    reducer: str
    mode: str = "strict"
    replace_with: float = 0.0


@dataclass(frozen=True)
class Threshold:
    ref_id: str
    expression: str
    kind: str
    params: tuple[float, ...]


Node = Query | Reduce | Threshold


@dataclass(frozen=True)
class Rule:
    uid: str
    title: str
    group: str
    interval: float
    condition: str
    nodes: dict[str, Node]
    pending: float = 0.0  # the rule's `for`
    no_data_state: str = "NoData"
    exec_err_state: str = "Error"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def seconds(text: str | int | float) -> float:
    """Grafana's durations (Prometheus' model.ParseDuration): `90s`, `5m`, `1h30m`, whole
    numbers with a unit, largest unit first, or `0`. Grafana refuses `1.5m` and a bare `60`,
    and so does this: a rule file that loads here loads in Grafana."""
    text = str(text).strip()
    if text == "0":
        return 0.0
    parts = DURATION.findall(text)
    units = [u for _, u in parts]
    order = list(UNIT_SECONDS)[::-1]
    in_order = [order.index(u) for u in units] == sorted({order.index(u) for u in units})
    if not parts or "".join(n + u for n, u in parts) != text or not in_order:
        raise ValueError(f"not a Grafana duration: {text!r} (whole numbers with a unit: 90s, 5m)")
    return sum(float(n) * UNIT_SECONDS[u] for n, u in parts)


def interpolate(value: object, env: Mapping[str, str]) -> object:
    """Expand environment variables in every string of a parsed value."""
    if isinstance(value, str):

        def expand(match: re.Match[str]) -> str:
            if match.group(1) == "$":
                return "$"
            name = match.group(2) or match.group(3)
            if name not in env:
                raise RuleError(f"environment variable {name} is not set (used in {value!r})")
            return env[name]

        return ENV_VAR.sub(expand, value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def expand_group(raw: dict, env: Mapping[str, str]) -> dict:
    """A rule group as Grafana reads it: variables expanded in the group's and each rule's own
    fields; every `data` item (query and expression models) kept exactly as written."""
    fields = interpolate({k: v for k, v in raw.items() if k != "rules"}, env)
    assert isinstance(fields, dict)
    rules = []
    for rule in raw.get("rules") or []:
        own = interpolate({k: v for k, v in rule.items() if k != "data"}, env)
        assert isinstance(own, dict)
        rules.append({**own, "data": rule.get("data")})
    return {**fields, "rules": rules}


def load(directory: Path, env: Mapping[str, str]) -> list[Rule]:
    """Every rule of every group in the directory's *.yaml / *.yml files, in file order."""
    rules: list[Rule] = []
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise RuleError(f"no rule files (*.yaml) in {directory}")
    for path in files:
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise RuleError(f"{path}: {exc}") from None
        for raw in document.get("groups", []):
            name = raw.get("name")
            try:
                group = expand_group(raw, env)
                interval = seconds(group["interval"])
                rules += [_rule(r, name, interval) for r in group.get("rules", [])]
            except RuleError as exc:
                raise RuleError(f"{path}: group {name!r}: {exc}") from None
            except (KeyError, TypeError, ValueError) as exc:
                raise RuleError(f"{path}: group {name!r}: {exc!r}") from None
    return rules


def _rule(raw: dict, group: str, interval: float) -> Rule:
    title = raw.get("title", "?")
    try:
        nodes = {item["refId"]: _node(item) for item in raw["data"]}
        rule = Rule(
            uid=raw["uid"],
            title=title,
            group=group,
            interval=interval,
            condition=raw["condition"],
            nodes=nodes,
            pending=seconds(raw.get("for", 0)),
            no_data_state=raw.get("noDataState", "NoData"),
            exec_err_state=raw.get("execErrState", "Error"),
            labels=dict(raw.get("labels") or {}),
            annotations=dict(raw.get("annotations") or {}),
        )
    except RuleError as exc:
        raise RuleError(f"rule {title!r}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise RuleError(f"rule {title!r}: {exc!r}") from None
    _check(rule)
    return rule


def _node(item: dict) -> Node:
    model, ref_id = item["model"], item["refId"]
    if item["datasourceUid"] != EXPRESSION_UID:
        window = item.get("relativeTimeRange")
        if not isinstance(window, dict) or "from" not in window:
            raise RuleError(f"{ref_id}: a query needs relativeTimeRange {{from, to}} (Grafana)")
        return Query(
            ref_id=ref_id,
            target=model.get("targetFull") or model["target"],
            start=float(window["from"]),
            end=float(window.get("to", 0)),
            max_data_points=int(model.get("maxDataPoints", 43200)),
        )
    kind = model.get("type")
    if kind == "reduce":
        settings = model.get("settings") or {}
        return Reduce(
            ref_id=ref_id,
            expression=model["expression"],
            reducer=model["reducer"],
            mode=settings.get("mode", "strict") or "strict",
            replace_with=float(settings.get("replaceWithValue", 0)),
        )
    if kind == "threshold":
        (condition,) = model["conditions"]
        evaluator = condition["evaluator"]
        return Threshold(
            ref_id=ref_id,
            expression=model["expression"],
            kind=evaluator["type"],
            params=tuple(float(p) for p in evaluator["params"]),
        )
    raise RuleError(f"{ref_id}: expression type {kind!r} is not supported (reduce, threshold)")


def _check(rule: Rule) -> None:
    if rule.condition not in rule.nodes:
        raise RuleError(f"rule {rule.title!r}: condition {rule.condition!r} is no refId")
    for node in rule.nodes.values():
        if isinstance(node, Reduce | Threshold) and node.expression not in rule.nodes:
            raise RuleError(f"rule {rule.title!r}: {node.ref_id} reads unknown {node.expression}")
        if isinstance(node, Reduce) and (
            node.reducer not in REDUCERS or node.mode not in REDUCE_MODES
        ):
            raise RuleError(f"rule {rule.title!r}: {node.ref_id}: {node.reducer}/{node.mode}")
        if isinstance(node, Threshold):
            needs = 2 if "range" in node.kind else 1
            if node.kind not in THRESHOLDS or len(node.params) < needs:
                raise RuleError(f"rule {rule.title!r}: {node.ref_id}: threshold {node.kind}")
    if rule.no_data_state not in NO_DATA_STATES:
        raise RuleError(f"rule {rule.title!r}: noDataState {rule.no_data_state!r}")
    if rule.exec_err_state not in ERROR_STATES:
        raise RuleError(f"rule {rule.title!r}: execErrState {rule.exec_err_state!r}")
