"""statsd-metrics client library: fire-and-forget StatsD metrics for web applications."""
