import pytest

from statsd_metrics import Client


@pytest.fixture
def client():
    """A client whose lines the active recorder captures (port 9: nothing would listen)."""
    with Client(prefix="app", port=9) as c:
        yield c
