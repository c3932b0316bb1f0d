"""Example applications that show the whole statsd-metrics pipeline on realistic traffic."""
