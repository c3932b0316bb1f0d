"""Business: who uses what, the external game API, and the domain's own events."""

from .panels import (
    Row,
    by,
    by_node,
    counts,
    dashboard,
    glob_variable,
    graph,
    named,
    peaks,
    prefix_variable,
    tagged,
    total,
)

OUTCOME = "stats_counts.$prefix.api.$service.*.outcome"
EVENTS = "stats_counts.$prefix.events"
FAILED = "{server_error,timeout,connection_error,error}"
ACTIVE = "stats.sets.$prefix.users.active"
FEATURES = "stats_counts.$prefix.features"
API_LATENCY = "stats.timers.$prefix.api.$service.*.latency"
SUM = "sumSeries"


def build() -> dict:
    return dashboard(
        uid="statsd-metrics-business",
        title="Business",
        description="Users, features, external API calls and domain events (docs/metrics.md).",
        variables=[
            prefix_variable(),
            glob_variable("service", "External API", "stats.timers.$prefix.api.*"),
        ],
        rows=[
            Row(
                "Users",
                [
                    graph(
                        "Active users",
                        named(f"sumSeries({tagged(ACTIVE, 'count')})", "active in the interval"),
                        named(
                            peaks(f"sumSeries({tagged(ACTIVE, 'daily_count')})"),
                            "active today (UTC)",
                        ),
                        description="Distinct users per flush interval (counted by keyed "
                        "pseudonym), and the running count of distinct users since 00:00 UTC, "
                        "kept by the aggregator (with several hosts, the sum over hosts: a "
                        "user seen by two counts twice).",
                    ),
                    graph(
                        "Feature usage",
                        by_node(
                            counts(by(tagged("stats_counts.$prefix.features.*"), 3, "sumSeries")), 0
                        ),
                        stacked=True,
                    ),
                ],
            ),
            Row(
                "External API",
                [
                    graph(
                        "Calls by outcome",
                        by_node(counts(by(tagged(f"{OUTCOME}.*"), 6, "sumSeries")), 0),
                        stacked=True,
                    ),
                    graph(
                        "Errors and rate-limit hits",
                        named(counts(total(f"{OUTCOME}.{FAILED}")), "errors"),
                        named(counts(total(f"{OUTCOME}.rate_limited")), "rate limited (429)"),
                        description="Calls that failed (5xx, timeout, connection) and calls "
                        "refused by the API's rate limit.",
                        colors={"errors": "red", "rate limited (429)": "orange"},
                    ),
                    graph(
                        "Call latency p90 by endpoint",
                        by_node(
                            peaks(
                                by(
                                    tagged(API_LATENCY, "upper_90"),
                                    5,
                                    "maxSeries",
                                )
                            ),
                            0,
                        ),
                        unit="ms",
                    ),
                    graph(
                        "Remaining quota",
                        "groupByNodes("
                        + tagged("stats.gauges.$prefix.api.$service.quota.{remaining,limit}")
                        + ", 'minSeries', 4, 6)",
                        description="Calls left in the API's rate-limit window, and the limit, per "
                        "API (`chpp.remaining`, `chpp.limit`); the lowest over hosts.",
                    ),
                ],
            ),
            Row(
                "Domain events",
                [
                    graph(
                        "Player updates",
                        by_node(
                            counts(
                                by(
                                    tagged(f"{EVENTS}.{{player_updates,player_edits}}"),
                                    3,
                                    "sumSeries",
                                )
                            ),
                            0,
                        ),
                        description="Players changed by syncs from the game API, and edits "
                        "by managers.",
                    ),
                    graph(
                        "Training recommendations",
                        by_node(
                            counts(
                                by(
                                    tagged(f"{EVENTS}.training_recommendations_{{made,accepted}}"),
                                    3,
                                    "sumSeries",
                                )
                            ),
                            0,
                        ),
                    ),
                ],
            ),
        ],
    )
