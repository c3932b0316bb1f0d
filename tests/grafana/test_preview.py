"""The preview at /dashboards/ on the render API's host, in headless Chromium (Debian's):
every panel of every dashboard loads a picture drawn by the render API that is a graph (not
its "No Data" placeholder) with its unit on the axis, the pictures refresh on their own, the
colours mean what they say, the application selector picks one with data, an empty pipeline
says what to do, and a screenshot is kept."""

from __future__ import annotations

import html.parser
import re
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from statsd_metrics.grafana.dashboards import load_all
from support.pipeline import RunningUp

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="./scripts/system-deps"),
]


class Images(html.parser.HTMLParser):
    """The <img> elements of a DOM dump, with their attributes and their figure's unit."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.unit = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "figure":
            self.unit = dict(attrs).get("data-unit") or ""
        if tag == "img":
            self.images.append({**{k: v or "" for k, v in attrs}, "unit": self.unit})


def dom_images(browser, url: str, budget_ms: int = 20_000) -> list[dict[str, str]]:
    dom = browser(f"--virtual-time-budget={budget_ms}", "--dump-dom", url)
    parser = Images()
    parser.feed(dom)
    return parser.images


def test_the_index_lists_every_dashboard(live):
    with urllib.request.urlopen(f"{live.render_url}/dashboards/", timeout=30) as response:
        page = response.read().decode()
    for uid, model in load_all().items():
        assert f'href="/dashboards/{uid}"' in page
        assert model["title"] in page


@pytest.mark.parametrize("uid", sorted(load_all()))
def test_every_panel_loads_a_graph_drawn_by_the_render_api(live, browser, uid):
    model = load_all()[uid]
    expected = [p["title"] for p in model["panels"] if p["type"] != "row"]
    images = dom_images(browser, f"{live.render_url}/dashboards/{uid}")
    assert [img["alt"] for img in images] == expected
    for img in images:
        assert img["src"].startswith("/render?"), img["alt"]
        assert "format=png" in img["src"]
        assert img["data-state"] == "loaded", img["alt"]
        assert img["data-width"] == img["width"], img["alt"]
        assert int(img["data-grey"]) > 1000, f"{img['alt']}: the render API's No Data picture"
        assert int(img["data-coloured"]) > 0, f"{img['alt']}: no series drawn"
        # the unit, on the axis and beside the picture
        assert img["unit"], img["alt"]
        assert ("vtitle=" + urllib.parse.quote_plus(img["unit"])) in img["src"], img["alt"]
    units = {img["alt"]: img["unit"] for img in images}
    expected_units = {
        "statsd-metrics-service": {"Request rate by endpoint": "requests/s",
                                   "p90 latency by endpoint": "ms",
                                   "Error ratio (5xx share of responses)": "%"},
        "statsd-metrics-infrastructure": {"Memory (RSS) by host": "bytes", "CPU by host": "%"},
    }.get(uid, {})  # fmt: skip
    assert expected_units.items() <= units.items()


def page(live, path: str) -> str:
    with urllib.request.urlopen(f"{live.render_url}{path}", timeout=30) as response:
        return response.read().decode()


def test_colours_mean_what_they_say(live):
    """Failed logins in red, not in the palette's second colour (green)."""
    images = Images()
    images.feed(page(live, "/dashboards/statsd-metrics-quality-security"))
    logins = next(i for i in images.images if i["alt"] == "Logins")
    source = urllib.parse.unquote_plus(logins["data-src"])
    assert "color(alias(" in source
    assert "'failed'), 'red')" in source
    assert "'succeeded'), 'green')" in source


def test_the_application_selector_defaults_to_one_with_data(live):
    """An application whose data is two hours old sorts first; the selector skips it."""
    old = int(time.time()) - 7200
    live.up.send_plaintext([f"stats.timers.aaa.http.index.latency.count 1 {old}"])
    deadline = time.monotonic() + 30
    while "aaa" not in page(live, "/dashboards/statsd-metrics-service"):
        assert time.monotonic() < deadline, "the old application never showed in the selector"
        time.sleep(0.5)
    text = page(live, "/dashboards/statsd-metrics-service")
    selected = re.search(r'name="var-prefix".*?<option value="([^"]+)" selected', text, re.S)
    assert selected is not None
    assert selected[1] in {"tagapp", "teamapp"}
    # the example apps are minutes old: the range fits them rather than Grafana's hour
    assert re.search(r'<option value="-(5|15)min" selected>', text)
    assert "from=-1h" not in text


def test_pictures_refresh_on_their_own(live, browser):
    url = f"{live.render_url}/dashboards/statsd-metrics-pipeline?refresh=1s"
    images = dom_images(browser, url, budget_ms=4_500)
    assert images
    assert all(int(img["data-loads"]) >= 3 for img in images), [i["data-loads"] for i in images]


def test_variables_and_range_are_chosen_in_the_page(live, browser):
    url = f"{live.render_url}/dashboards/statsd-metrics-service?var-endpoint=sync&from=-15min"
    images = dom_images(browser, url)
    assert images
    for img in images:
        assert "from=-15min" in img["src"]
        assert "http.%2A." not in img["src"]  # no "All" glob left where an endpoint was chosen
    assert any("http.sync." in urllib.parse.unquote(img["src"]) for img in images)


def test_screenshot_of_the_service_dashboard(live, browser, output_dir):
    shot = output_dir / "preview-service.png"
    shot.unlink(missing_ok=True)
    browser(
        "--virtual-time-budget=20000",
        "--window-size=1240,1400",
        "--hide-scrollbars",
        f"--screenshot={shot}",
        f"{live.render_url}/dashboards/statsd-metrics-service",  # the default range
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a page of graphs, not a blank one


def test_an_empty_pipeline_says_what_to_do(tmp_path: Path):
    up = RunningUp(tmp_path / "var", "--aggregators", "0", "--flush-interval", "1")
    try:
        up.wait_ready()
        with urllib.request.urlopen(
            f"{up.render_url}/dashboards/statsd-metrics-service", timeout=30
        ) as response:
            text = response.read().decode()
    finally:
        up.stop()
    assert "No application has sent metrics here yet" in text
    assert "statsd-metrics up --demo" in text
