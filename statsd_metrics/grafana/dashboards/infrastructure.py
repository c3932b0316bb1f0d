"""Infrastructure: the processes (CPU, memory, threads, files) and the database under the app."""

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
)

PROCESS = "stats.gauges.$prefix.process.$host"
DB = "stats.timers.$prefix.db.$db"


def build() -> dict:
    return dashboard(
        uid="statsd-metrics-infrastructure",
        title="Infrastructure",
        description="Process collector and SQLAlchemy metrics (docs/metrics.md).",
        variables=[
            prefix_variable(),
            glob_variable("host", "Host", "stats.gauges.$prefix.process.*"),
            glob_variable("db", "Database", "stats.timers.$prefix.db.*"),
        ],
        rows=[
            Row(
                "Processes",
                [
                    graph(
                        "CPU by host",
                        by(tagged(f"{PROCESS}.cpu.percent"), 4, "sumSeries"),
                        unit="percent",
                        description="100% is one core busy.",
                    ),
                    graph(
                        "Memory (RSS) by host",
                        by(tagged(f"{PROCESS}.memory.rss"), 4, "sumSeries"),
                        unit="bytes",
                    ),
                    graph("Threads by host", by(tagged(f"{PROCESS}.threads"), 4, "sumSeries")),
                    graph(
                        "Open files by host",
                        by(tagged(f"{PROCESS}.open_files"), 4, "sumSeries"),
                        description="File descriptors, sockets included.",
                    ),
                    graph(
                        "Uptime by host",
                        by(tagged(f"{PROCESS}.uptime"), 4, "maxSeries"),
                        unit="s",
                        description="Drops to zero at a restart.",
                    ),
                    graph(
                        "Garbage collections by generation",
                        by_node(
                            counts(
                                by(
                                    tagged("stats_counts.$prefix.process.$host.gc.*.collections"),
                                    5,
                                    "sumSeries",
                                )
                            ),
                            0,
                        ),
                    ),
                ],
            ),
            Row(
                "Database",
                [
                    graph(
                        "Queries per second by kind, and errors",
                        by(tagged(f"{DB}.query.*", "count_ps"), 6, "sumSeries"),
                        named(f"sumSeries({tagged('stats.$prefix.db.$db.errors.*')})", "errors"),
                        unit="ops",
                        stacked=True,
                    ),
                    graph(
                        "Query time p90 by kind",
                        by_node(peaks(by(tagged(f"{DB}.query.*", "upper_90"), 6, "maxSeries")), 0),
                        unit="ms",
                    ),
                    graph(
                        "Connection pool",
                        by_node(
                            peaks(by(tagged("stats.gauges.$prefix.db.$db.pool.*"), 6, "sumSeries")),
                            0,
                        ),
                        description="Connections in use, over the pool size (overflow), and "
                        "the pool size, summed over processes.",
                    ),
                ],
            ),
        ],
    )
