"""Pipeline: the aggregator and Carbon watched through their own metrics."""

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
    tagged,
)

# The aggregator's internal metrics (prefix_stats "statsd", legacy namespace; docs/aggregator.md).
AGGREGATOR = "stats.statsd"
CARBON = "carbon.agents.$agent"


def build() -> dict:
    return dashboard(
        uid="statsd-metrics-pipeline",
        title="Pipeline",
        description="Aggregator and carbon-cache health (docs/aggregator.md, docs/graphite.md).",
        variables=[glob_variable("agent", "Carbon cache", "carbon.agents.*")],
        rows=[
            Row(
                "Aggregator",
                [
                    graph(
                        "Packets and metrics received",
                        by(
                            tagged(f"{AGGREGATOR}.{{packets_received,metrics_received}}"),
                            2,
                            "sumSeries",
                        ),
                        unit="cps",
                    ),
                    graph(
                        "Bad lines",
                        named(
                            counts(f"sumSeries({tagged('stats_counts.statsd.bad_lines_seen')})"),
                            "bad lines",
                        ),
                        description="Lines rejected (malformed, invalid name, oversized...): "
                        "counted and dropped.",
                        colors={"bad lines": "red"},
                    ),
                    graph(
                        "Flush time",
                        named(
                            peaks(f"maxSeries({tagged(f'{AGGREGATOR}.graphiteStats.flush_time')})"),
                            "write to Carbon",
                        ),
                        named(
                            peaks(f"maxSeries({tagged(f'{AGGREGATOR}.processing_time')})"),
                            "compute flush",
                        ),
                        unit="ms",
                    ),
                    graph(
                        "Spool",
                        by_node(
                            peaks(
                                by(
                                    tagged("stats.gauges.statsd.spool.{flushes,bytes}"),
                                    4,
                                    "sumSeries",
                                )
                            ),
                            0,
                        ),
                        description="Flushes waiting on disk because Carbon could not take "
                        "them. Written through Carbon too: while Carbon is unreachable this "
                        "graph stops, and the spooled history appears when it is replayed.",
                    ),
                ],
            ),
            Row(
                "Carbon",
                [
                    graph(
                        "Cache size",
                        by_node(peaks(f"{CARBON}.cache.size"), 2),
                        description="Points received but not yet written to Whisper.",
                    ),
                    graph(
                        "Points per update",
                        by_node(f"{CARBON}.pointsPerUpdate", 2),
                        description="Points written per Whisper update: high means the "
                        "writer is behind and batching.",
                    ),
                    graph("Series created", by_node(counts(f"{CARBON}.creates"), 2)),
                    graph(
                        "Points received and committed",
                        by_node(counts(f"{CARBON}.{{metricsReceived,committedPoints}}"), 2, 3),
                    ),
                ],
            ),
        ],
    )
