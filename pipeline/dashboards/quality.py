"""Quality and security: how often requests succeed, what breaks, who is knocking."""

from pipeline.dashboards.panels import (
    Row,
    counts,
    dashboard,
    glob_variable,
    graph,
    prefix_variable,
)

STATUS = "stats_counts.$prefix.http.$endpoint.status"
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
                        f"alias(asPercent(sumSeries({STATUS}.{{2xx,3xx}}.*), "
                        f"sumSeries({STATUS}.*.*)), 'success')",
                        unit="percent",
                    ),
                    graph(
                        "Exceptions by type, and 5xx responses",
                        counts(
                            "groupByNode(stats_counts.$prefix.http.$endpoint.exceptions.*, 5, "
                            "'sum')"
                        ),
                        counts(f"alias(sumSeries({STATUS}.5xx.*), '5xx responses')"),
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
                        counts(f"aliasByNode({SECURITY}.login.*, 4)"),
                        description="Succeeded, failed (wrong name or password), blocked "
                        "(account locked).",
                        stacked=True,
                    ),
                    graph(
                        "Lockouts",
                        counts(f"alias({SECURITY}.lockouts, 'accounts locked')"),
                    ),
                    graph(
                        "Rate limiting by rule",
                        counts(f"aliasByNode({SECURITY}.rate_limited.*, 4)"),
                        description="Requests refused by the application's own limits.",
                    ),
                ],
            ),
        ],
    )
