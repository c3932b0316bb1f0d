"""Quality and security: how often requests succeed, what breaks, who is knocking."""

from .panels import (
    Row,
    by_node,
    counts,
    dashboard,
    glob_variable,
    graph,
    named,
    prefix_variable,
)

STATUS = "stats_counts.$prefix.http.$endpoint.status"
SUCCEEDED = f"sumSeries({STATUS}.{{2xx,3xx}}.*)"
SECURITY = "stats_counts.$prefix.security"


def build() -> dict:
    return dashboard(
        uid="statsd-metrics-quality-security",
        title="Quality and security",
        description="Success ratio, exceptions, logins and rate limiting (docs/metrics.md).",
        variables=[
            prefix_variable(),
            glob_variable("endpoint", "Endpoint", "stats.timers.$prefix.http.*"),
        ],
        rows=[
            Row(
                "Quality",
                [
                    graph(
                        "Success ratio (2xx and 3xx share)",
                        named(f"asPercent({SUCCEEDED}, sumSeries({STATUS}.*.*))", "success"),
                        unit="percent",
                    ),
                    graph(
                        "Exceptions by type, and 5xx responses",
                        by_node(
                            counts(
                                "groupByNode(stats_counts.$prefix.http.$endpoint.exceptions.*, "
                                "5, 'sum')"
                            ),
                            0,
                        ),
                        named(counts(f"sumSeries({STATUS}.5xx.*)"), "5xx responses"),
                        description="Exceptions raised while serving (class names only), "
                        "whether or not a handler turned them into an answer.",
                    ),
                ],
            ),
            Row(
                "Security",
                [
                    graph(
                        "Logins",
                        by_node(counts(f"{SECURITY}.login.*"), 4),
                        description="Succeeded, failed (wrong name or password), blocked "
                        "(account locked).",
                        stacked=True,
                    ),
                    graph("Lockouts", named(counts(f"{SECURITY}.lockouts"), "accounts locked")),
                    graph(
                        "Rate limiting by rule",
                        by_node(counts(f"{SECURITY}.rate_limited.*"), 4),
                        description="Requests refused by the application's own limits.",
                    ),
                ],
            ),
        ],
    )
