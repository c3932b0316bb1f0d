"""Quality and security: how often requests succeed, what breaks, who is knocking."""

from .panels import (
    Row,
    by,
    by_node,
    counts,
    dashboard,
    glob_variable,
    graph,
    named,
    prefix_variable,
    tagged,
    total,
)

STATUS = "stats_counts.$prefix.http.$endpoint.status"
SUCCEEDED = total(f"{STATUS}.{{2xx,3xx}}.*")
RESPONSES = total(f"{STATUS}.*.*")
FIVE_XX = total(f"{STATUS}.5xx.*")
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
                        named(f"asPercent({SUCCEEDED}, {RESPONSES})", "success"),
                        unit="percent",
                        colors={"success": "green"},
                    ),
                    graph(
                        "Exceptions by type, and 5xx responses",
                        by_node(
                            counts(
                                by(
                                    tagged("stats_counts.$prefix.http.$endpoint.exceptions.*"),
                                    5,
                                    "sumSeries",
                                )
                            ),
                            0,
                        ),
                        named(counts(FIVE_XX), "5xx responses"),
                        description="Exceptions raised while serving (class names only), "
                        "whether or not a handler turned them into an answer.",
                        colors={"5xx responses": "red"},
                    ),
                ],
            ),
            Row(
                "Security",
                [
                    graph(
                        "Logins",
                        *(
                            named(counts(total(f"{SECURITY}.login.{outcome}")), outcome)
                            for outcome in ("succeeded", "failed", "blocked")
                        ),
                        description="Succeeded, failed (wrong name or password), blocked "
                        "(account locked).",
                        stacked=True,
                        colors={"succeeded": "green", "failed": "red", "blocked": "orange"},
                    ),
                    graph(
                        "Lockouts",
                        named(counts(total(f"{SECURITY}.lockouts")), "accounts locked"),
                        colors={"accounts locked": "red"},
                    ),
                    graph(
                        "Rate limiting by rule",
                        by_node(
                            counts(by(tagged(f"{SECURITY}.rate_limited.*"), 4, "sumSeries")), 0
                        ),
                        description="Requests refused by the application's own limits.",
                    ),
                ],
            ),
        ],
    )
