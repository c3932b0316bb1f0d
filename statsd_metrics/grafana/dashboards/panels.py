"""The pieces every dashboard is made of: the datasource, template variables, graph panels.

Consolidation: when a panel asks for fewer points than the range holds (Grafana sends
`maxDataPoints` = the panel's width), the render API merges neighbouring points, by average
unless told otherwise. An average of per-interval counts is no count at all (a day of requests
zoomed out to 1 h buckets would read "requests per 10 s"), and an average of maxima hides the
peaks, so counts go through `counts()` (sum) and maxima through `peaks()` (max).

The order matters: a function that combines series (sumSeries, groupByNode) makes new ones that
average again, and consolidateBy renames what it wraps, so it sits after the combining and
before the naming: `by_node(counts(groupByNode(...)), 0)`.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DynamicConfigValue,
    MatcherConfig,
    VariableModel,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from .graphite_query import PLUGIN, Query

# The uid the provisioned datasource has (graphite/grafana/provisioning/datasources/).
DATASOURCE_UID = "statsd-metrics-graphite"
DATASOURCE = common.DataSourceRef(type_val=PLUGIN, uid=DATASOURCE_UID)
REFRESH = "30s"
WIDTH = 12  # half of Grafana's 24-column grid
HEIGHT = 8


def tagged(path: str, field: str = "") -> str:
    """Every series of `path`, whatever its tags: none, or the one segment the aggregator folds
    them into right after the name (constant tags, the host tag; docs/metrics.md, "Tags").
    `field` is what follows the name (a timer's `upper_90`, a set's `count`)."""
    tail = f".{field}" if field else ""
    return f"group({path}{tail}, {path}.*{tail})"


def by(target: str, node: int, how: str) -> str:
    """One series per value of `node` (0-based), named by it, the rest (hosts, tag sets, the
    other values of a glob) combined by `how`: sumSeries for counts and levels that add up,
    maxSeries for peaks and percentiles, averageSeries for means, minSeries for what is left."""
    return f"groupByNode({target}, {node}, '{how}')"


def total(path: str, how: str = "sumSeries") -> str:
    """All the series of `path`, every tag set and host, combined into one."""
    return f"{how}({tagged(path)})"


def counts(target: str) -> str:
    """Per-interval counts: merged points add up."""
    return f"consolidateBy({target}, 'sum')"


def peaks(target: str) -> str:
    """Maxima (a timer's upper, a level's peak): merged points keep the largest."""
    return f"consolidateBy({target}, 'max')"


def by_node(target: str, *nodes: int) -> str:
    """Name each series by the given nodes of its path (0-based)."""
    return f"aliasByNode({target}, {', '.join(map(str, nodes))})"


def named(target: str, name: str) -> str:
    return f"alias({target}, '{name}')"


def prefix_variable() -> builders.QueryVariable:
    """The application prefix: every prefix that has the Flask extension's request timers."""
    return (
        builders.QueryVariable("prefix")
        .label("Application")
        .description("The application's StatsD prefix (STATSD_PREFIX)")
        .datasource(DATASOURCE)
        .query("expand(stats.timers.*.http)")
        .regex(r"/^stats\.timers\.([^.]+)\.http$/")
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


def glob_variable(name: str, label: str, query: str) -> builders.QueryVariable:
    """One path segment, several values at once; "All" is the glob `*`."""
    return (
        builders.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value("*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def graph(
    title: str,
    *targets: str,
    unit: str = "short",
    description: str = "",
    stacked: bool = False,
    colors: dict[str, str] | None = None,
) -> timeseries.Panel:
    """A time-series panel whose queries are Graphite targets, refIds A, B, C...

    `colors` fixes the colour of series by name (`{"failed": "red"}`: a byNames override),
    where the palette's order would give the wrong meaning (failed logins in green); the
    preview draws them so too.
    """
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(WIDTH)
        .height(HEIGHT)
        .line_width(1)
        .fill_opacity(20 if stacked else 5)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs([])
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    for ref_id, target in zip(string.ascii_uppercase, targets, strict=False):
        panel = panel.with_target(Query(target).ref_id(ref_id).datasource(DATASOURCE))
    for name, color in (colors or {}).items():
        fixed = DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color})
        matcher = MatcherConfig(id_val="byNames", options={"mode": "include", "names": [name]})
        panel = panel.with_override(matcher, [fixed])
    return panel


@dataclass
class Row:
    title: str
    panels: list[timeseries.Panel] = field(default_factory=list)


def dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[Builder[VariableModel]],
    rows: list[Row],
) -> dict:
    """Build the dashboard and return its JSON model, panels numbered in reading order."""
    built = (
        builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["statsd-metrics"])
        .editable()
        .timezone("browser")
        .time("now-1h", "now")
        .refresh(REFRESH)
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .variables(variables)
    )
    for row in rows:
        built = built.with_row(builders.Row(row.title))
        for panel in row.panels:
            built = built.with_panel(panel)
    model = json.loads(json.dumps(built.build(), cls=JSONEncoder))
    for number, panel in enumerate(model["panels"], 1):
        panel["id"] = number
    return model
