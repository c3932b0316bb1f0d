"""Business: who uses what, the external game API, and the domain's own events."""

from pipeline.dashboards.panels import (
    Row,
    counts,
    dashboard,
    glob_variable,
    graph,
    peaks,
    prefix_variable,
)

API = "stats_counts.$prefix.api.$service.*.outcome"
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
                        "alias(stats.sets.$prefix.users.active.count, 'active in interval')",
                        "alias(summarize(stats_counts.$prefix.users.daily_active, '1d', 'sum', "
                        "false), 'active today')",
                        description="Distinct users per flush interval (counted by keyed "
                        "pseudonym), and first visits of each UTC day.",
                    ),
                    graph(
                        "Feature usage",
                        counts("aliasByNode(stats_counts.$prefix.features.*, 3)"),
                        stacked=True,
                    ),
                ],
            ),
            Row(
                "External API",
                [
                    graph(
                        "Calls by outcome",
                        counts(f"groupByNode({API}.*, 6, 'sum')"),
                        stacked=True,
                    ),
                    graph(
                        "Errors and rate-limit hits",
                        counts(f"alias(sumSeries({API}.{FAILED}), 'errors')"),
                        counts(f"alias(sumSeries({API}.rate_limited), 'rate limited (429)')"),
                        description="Calls that failed (5xx, timeout, connection) and calls "
                        "refused by the API's rate limit.",
                    ),
                    graph(
                        "Call latency p90 by endpoint",
                        peaks(
                            "aliasByNode(stats.timers.$prefix.api.$service.*.latency.upper_90, 5)"
                        ),
                        unit="ms",
                    ),
                    graph(
                        "Remaining quota",
                        "aliasByNode(stats.gauges.$prefix.api.$service.quota.{remaining,limit}, 5)",
                        description="Calls left in the API's rate-limit window, and the limit.",
                    ),
                ],
            ),
            Row(
                "Domain events",
                [
                    graph(
                        "Player updates",
                        counts(f"aliasByNode({EVENTS}.{{player_updates,player_edits}}, 3)"),
                        description="Players changed by syncs from the game API, and edits "
                        "by managers.",
                    ),
                    graph(
                        "Training recommendations",
                        counts(
                            f"aliasByNode({EVENTS}.training_recommendations_{{made,accepted}}, 3)"
                        ),
                    ),
                ],
            ),
        ],
    )
