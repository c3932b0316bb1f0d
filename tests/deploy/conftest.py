"""Fixtures for the deployment tests: a real `statsd-metrics up`, stopped by PID."""

from tests.pipeline.conftest import start_up  # noqa: F401
