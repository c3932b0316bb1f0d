"""Service: how the application answers: request rate, errors, latency, requests in flight."""

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

HTTP = "stats.timers.$prefix.http.$endpoint"
LATENCY = f"{HTTP}.latency"
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
                        by(tagged(f"{HTTP}.latency", "count_ps"), 4, "sumSeries"),
                        unit="reqps",
                        stacked=True,
                    ),
                    graph(
                        "Responses by status class",
                        *(
                            named(counts(total(f"{STATUS}.{status}.*")), status)
                            for status in ("2xx", "3xx", "4xx", "5xx")
                        ),
                        description="Responses per flush interval, summed over the endpoints.",
                        stacked=True,
                        colors={"2xx": "green", "3xx": "blue", "4xx": "orange", "5xx": "red"},
                    ),
                    graph(
                        "Error ratio (5xx share of responses)",
                        named(
                            f"asPercent({total(f'{STATUS}.5xx.*')}, {total(f'{STATUS}.*.*')})",
                            "5xx",
                        ),
                        unit="percent",
                        description="Empty while no 5xx has ever been answered.",
                        colors={"5xx": "red"},
                    ),
                    graph(
                        "Requests in flight",
                        by_node(
                            peaks(
                                by(
                                    tagged("stats.gauges.$prefix.http.$endpoint.in_flight"),
                                    4,
                                    "sumSeries",
                                )
                            ),
                            0,
                        ),
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
                        by(tagged(f"{HTTP}.latency", "median"), 4, "averageSeries"),
                        unit="ms",
                    ),
                    graph(
                        "p90 latency by endpoint",
                        by_node(
                            peaks(by(tagged(f"{HTTP}.latency", "upper_90"), 4, "maxSeries")), 0
                        ),
                        unit="ms",
                        description="90% of the interval's requests were at most this slow.",
                    ),
                    graph(
                        "Slowest request (upper) by endpoint",
                        by_node(peaks(by(tagged(LATENCY, "upper"), 4, "maxSeries")), 0),
                        unit="ms",
                    ),
                    graph(
                        "Response size (mean) by endpoint",
                        by(tagged(f"{HTTP}.response_bytes", "mean"), 4, "averageSeries"),
                        unit="bytes",
                    ),
                ],
            ),
        ],
    )
