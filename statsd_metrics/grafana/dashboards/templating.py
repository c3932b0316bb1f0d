"""Template variables resolved and substituted the way Grafana's Graphite datasource does it.

Variables are resolved in order, each query seeing the values chosen before it: a query
`expand(<glob>)` lists full paths (/metrics/expand), any other lists the last node's names
(/metrics/find); an optional `/regex/` keeps matches, its first group becoming the value.
A selection is substituted as Graphite globs: one value as is, several as `{a,b}`, "All" as
the variable's allValue (`*` in our dashboards) or every option in braces. The lookups are
passed in, so the preview asks graphite-render in-process and the tests ask it over HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

ALL = "$__all"
Lookup = Callable[[str], Sequence[str]]
REFERENCE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]")


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    options: list[str]
    selected: list[str]  # [ALL] for "All"
    include_all: bool
    glob: str  # what $name becomes in a target


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """Replace $name, ${name} and [[name]] by the variable's glob; unknown names stay."""

    def replace(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        return values.get(name, match.group(0))

    return REFERENCE.sub(replace, text)


def _regex(pattern: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    body, _, flags = pattern[1:].rpartition("/") if pattern.startswith("/") else (pattern, "", "")
    return re.compile(body, re.IGNORECASE if "i" in flags else 0)


def _options(raw: Sequence[str], regex: re.Pattern[str] | None) -> list[str]:
    options: list[str] = []
    for text in raw:
        option = text
        if regex is not None:
            match = regex.search(text)
            if match is None:
                continue
            option = match.group(1) if match.groups() else text
        if option not in options:
            options.append(option)
    return options


def _glob(values: list[str]) -> str:
    return values[0] if len(values) == 1 else "{" + ",".join(values) + "}"


def resolve(
    model: dict, find: Lookup, expand: Lookup, chosen: Mapping[str, Sequence[str]] = {}
) -> dict[str, Variable]:
    """Every template variable of a dashboard model, with its options and selection."""
    variables: dict[str, Variable] = {}
    for spec in model.get("templating", {}).get("list", []):
        name = spec["name"]
        query = interpolate(str(spec.get("query", "")), {n: v.glob for n, v in variables.items()})
        if expanded := re.fullmatch(r"expand\((.*)\)", query):
            raw = expand(expanded.group(1))
        else:
            raw = find(query)
        options = _options(raw, _regex(spec.get("regex", "")))
        if spec.get("sort") in (1, 5, 7):
            options.sort()
        include_all = bool(spec.get("includeAll"))
        default = (spec.get("current") or {}).get("value")
        wanted = list(
            chosen.get(name) or ([default] if isinstance(default, str) else default or [])
        )
        if wanted == [ALL] and include_all:
            selected = [ALL]
        else:
            selected = [v for v in wanted if v in options][: None if spec.get("multi") else 1]
            selected = selected or options[:1] or ([ALL] if include_all else [])
        if selected == [ALL]:
            glob = spec.get("allValue") or _glob(options)
        else:
            glob = _glob(selected) if selected else ""
        variables[name] = Variable(
            name, spec.get("label", name), options, selected, include_all, glob
        )
    return variables


@dataclass(frozen=True)
class PanelQuery:
    """One panel with its targets as Grafana would send them, variables substituted."""

    id: int
    title: str
    targets: dict[str, str]  # refId -> target
    width: int  # grid columns of 24
    height: int  # grid rows of 30 px
    stacked: bool
    unit: str = "short"  # Grafana's unit id: ms, percent, reqps, bytes...
    colors: dict[str, str] = field(default_factory=dict)  # series name -> fixed colour


def panels(model: dict, variables: Mapping[str, Variable]) -> list[PanelQuery]:
    values = {name: v.glob for name, v in variables.items()}
    found = []
    for panel in model.get("panels", []):
        if panel.get("type") == "row":
            continue
        targets = {
            t["refId"]: interpolate(t["target"], values)
            for t in panel.get("targets", [])
            if not t.get("hide")
        }
        config = panel.get("fieldConfig", {})
        stacking = config.get("defaults", {}).get("custom", {})
        colors = {}
        for override in config.get("overrides", []):
            matcher = override.get("matcher", {})
            names = (matcher.get("options") or {}).get("names", [])
            for item in override.get("properties", []):
                fixed = (item.get("value") or {}).get("fixedColor")
                if matcher.get("id") == "byNames" and item.get("id") == "color" and fixed:
                    colors.update(dict.fromkeys(names, fixed))
        found.append(
            PanelQuery(
                id=panel["id"],
                title=panel.get("title", ""),
                targets=targets,
                width=panel["gridPos"]["w"],
                height=panel["gridPos"]["h"],
                stacked=stacking.get("stacking", {}).get("mode") == "normal",
                unit=config.get("defaults", {}).get("unit") or "short",
                colors=colors,
            )
        )
    return found
