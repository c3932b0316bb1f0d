"""Business: who uses what, the external game API, and the domain's own events."""

from .panels import (
    Row,
    by_node,
    counts,
    dashboard,
    glob_variable,
    graph,
    named,
    peaks,
    prefix_variable,
)

OUTCOME = "stats_counts.$prefix.api.$service.*.outcome"
EVENTS = "stats_counts.$prefix.events"
FAILED = "{server_error,timeout,connection_error,error}"


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
                        named("stats.sets.$prefix.users.active.count", "active in interval"),
                        named(
                            "summarize(stats_counts.$prefix.users.daily_active, '1d', 'sum', "
                            "false)",
                            "active today",
                        ),
                        description="Distinct users per flush interval (counted by keyed "
                        "pseudonym), and first visits of each UTC day.",
                    ),
                    graph(
                        "Feature usage",
                        by_node(counts("stats_counts.$prefix.features.*"), 3),
                        stacked=True,
                    ),
                ],
            ),
            Row(
                "External API",
                [
                    graph(
                        "Calls by outcome",
                        by_node(counts(f"groupByNode({OUTCOME}.*, 6, 'sum')"), 0),
                        stacked=True,
                    ),
                    graph(
                        "Errors and rate-limit hits",
                        named(counts(f"sumSeries({OUTCOME}.{FAILED})"), "errors"),
                        named(counts(f"sumSeries({OUTCOME}.rate_limited)"), "rate limited (429)"),
                        description="Calls that failed (5xx, timeout, connection) and calls "
                        "refused by the API's rate limit.",
                    ),
                    graph(
                        "Call latency p90 by endpoint",
                        by_node(peaks("stats.timers.$prefix.api.$service.*.latency.upper_90"), 5),
                        unit="ms",
                    ),
                    graph(
                        "Remaining quota",
                        by_node("stats.gauges.$prefix.api.$service.quota.{remaining,limit}", 5),
                        description="Calls left in the API's rate-limit window, and the limit.",
                    ),
                ],
            ),
            Row(
                "Domain events",
                [
                    graph(
                        "Player updates",
                        by_node(counts(f"{EVENTS}.{{player_updates,player_edits}}"), 3),
                        description="Players changed by syncs from the game API, and edits "
                        "by managers.",
                    ),
                    graph(
                        "Training recommendations",
                        by_node(counts(f"{EVENTS}.training_recommendations_{{made,accepted}}"), 3),
                    ),
                ],
            ),
        ],
    )
