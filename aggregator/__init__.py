"""The host StatsD daemon: receive, aggregate per flush interval, write Graphite plaintext."""
