"""Pipeline: the aggregator and Carbon watched through their own metrics."""

from pipeline.dashboards.panels import (
    Row,
    counts,
    dashboard,
    glob_variable,
    graph,
    peaks,
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
                        f"aliasByNode({AGGREGATOR}.{{packets_received,metrics_received}}, 2)",
                        unit="cps",
                    ),
                    graph(
                        "Bad lines",
                        counts("alias(stats_counts.statsd.bad_lines_seen, 'bad lines')"),
                        description="Lines rejected (malformed, invalid name, oversized...): "
                        "counted and dropped.",
                    ),
                    graph(
                        "Flush time",
                        peaks(f"alias({AGGREGATOR}.graphiteStats.flush_time, 'write to Carbon')"),
                        peaks(f"alias({AGGREGATOR}.processing_time, 'compute flush')"),
                        unit="ms",
                    ),
                    graph(
                        "Spool",
                        peaks("aliasByNode(stats.gauges.statsd.spool.{flushes,bytes}, 4)"),
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
                        peaks(f"aliasByNode({CARBON}.cache.size, 2)"),
                        description="Points received but not yet written to Whisper.",
                    ),
                    graph(
                        "Points per update",
                        f"aliasByNode({CARBON}.pointsPerUpdate, 2)",
                        description="Points written per Whisper update: high means the "
                        "writer is behind and batching.",
                    ),
                    graph(
                        "Series created",
                        counts(f"aliasByNode({CARBON}.creates, 2)"),
                    ),
                    graph(
                        "Points received and committed",
                        counts(f"aliasByNode({CARBON}.{{metricsReceived,committedPoints}}, 2, 3)"),
                    ),
                ],
            ),
        ],
    )
