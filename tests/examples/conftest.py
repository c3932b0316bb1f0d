import pytest

from examples.teamapp.app import create_app
from examples.teamapp.chpp_sim import ChppSimulator, SimSettings, create_sim_app
from examples.teamapp.serving import serve_in_thread
from support.net import UdpCollector

SECRET = "3b8e1f6a9c2d4e7f05a1b3c5d7e9f2a4c6e8b0d1f3a5c7e9b2d4f6a8c0e1f3a5"


@pytest.fixture
def chpp():
    """The CHPP simulator on a loopback port, answering at once."""
    sim = ChppSimulator(SimSettings(latency_ms=0, error_rate=0, rate_limit=1000))
    with serve_in_thread(create_sim_app(sim)) as url:
        sim.url = url
        yield sim


@pytest.fixture
def make_app(chpp):
    apps = []

    def make(**config):
        app = create_app({
            "CHPP_URL": chpp.url,
            "CHPP_RETRIES": 0,
            "DEMO_USERS": 8,
            "STATSD_PORT": 9,
            "STATSD_METRICS_USER_HASH_SECRET": SECRET,
            "RATE_LIMITS": {"login": (100, 60.0), "sync": (100, 1.0)},
            **config,
        })  # fmt: skip
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["teamapp"].chpp.close()
        app.extensions["statsd_metrics"].client.close()


@pytest.fixture
def sink():
    s = UdpCollector()
    yield s
    s.close()
