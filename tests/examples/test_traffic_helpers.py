import ipaddress

import pytest

from examples.teamapp.traffic import TrafficGenerator, TrafficPlan, client_address, day_curve


@pytest.mark.parametrize("url", ["http://10.0.0.1:80", "http://example.org", "http://192.0.2.1"])
def test_traffic_refuses_anything_but_loopback(url):
    with pytest.raises(ValueError, match="loopback"):
        TrafficGenerator(url, TrafficPlan())
    with pytest.raises(ValueError, match="loopback"):
        TrafficGenerator("http://127.0.0.1:1", TrafficPlan(chpp_url=url))


def test_loopback_forms_are_accepted():
    for url in ("http://127.0.0.1:5000/", "http://localhost:1", "http://[::1]:8"):
        TrafficGenerator(url, TrafficPlan())


def test_fake_client_addresses_are_documentation_addresses():
    docs = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
    for n in range(1, 800):
        address = ipaddress.ip_address(client_address(n))
        assert any(address in net for net in docs)


def test_day_curve_is_quiet_at_night_and_peaks_in_the_evening():
    night, lunch, evening = day_curve(3 / 24), day_curve(12.5 / 24), day_curve(20 / 24)
    assert night < 0.2 < lunch < evening <= 1.01
