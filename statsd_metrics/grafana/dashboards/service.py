"""Service: how the application answers: request rate, errors, latency, requests in flight."""

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

HTTP = "stats.timers.$prefix.http.$endpoint"
STATUS = "stats_counts.$prefix.http.$endpoint.status"


def build() -> dict:
    return dashboard(
        uid="statsd-metrics-service",
        title="Service",
        description="Requests, errors and latency by endpoint (Flask extension, docs/metrics.md).",
        variables=[
            prefix_variable(),
            glob_variable("endpoint", "Endpoint", "stats.timers.$prefix.http.*"),
        ],
        rows=[
            Row(
                "Traffic",
                [
                    graph(
                        "Request rate by endpoint",
                        by_node(f"{HTTP}.latency.count_ps", 4),
                        unit="reqps",
                        stacked=True,
                    ),
                    graph(
                        "Responses by status class",
                        by_node(counts(f"groupByNode({STATUS}.*.*, 5, 'sum')"), 0),
                        description="Responses per flush interval, summed over the endpoints.",
                        stacked=True,
                    ),
                    graph(
                        "Error ratio (5xx share of responses)",
                        named(
                            f"asPercent(sumSeries({STATUS}.5xx.*), sumSeries({STATUS}.*.*))", "5xx"
                        ),
                        unit="percent",
                        description="Empty while no 5xx has ever been answered.",
                    ),
                    graph(
                        "Requests in flight",
                        by_node(peaks("stats.gauges.$prefix.http.$endpoint.in_flight"), 4),
                        description="Summed over every process and host; peaks kept when "
                        "zoomed out.",
                    ),
                ],
            ),
            Row(
                "Latency",
                [
                    graph(
                        "Median latency by endpoint",
                        by_node(f"{HTTP}.latency.median", 4),
                        unit="ms",
                    ),
                    graph(
                        "p90 latency by endpoint",
                        by_node(peaks(f"{HTTP}.latency.upper_90"), 4),
                        unit="ms",
                        description="90% of the interval's requests were at most this slow.",
                    ),
                    graph(
                        "Slowest request (upper) by endpoint",
                        by_node(peaks(f"{HTTP}.latency.upper"), 4),
                        unit="ms",
                    ),
                    graph(
                        "Response size (mean) by endpoint",
                        by_node(f"{HTTP}.response_bytes.mean", 4),
                        unit="bytes",
                    ),
                ],
            ),
        ],
    )
