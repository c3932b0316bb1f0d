"""The preview at /dashboards/ on the render API's host, in headless Chromium (Debian's):
every panel of every dashboard loads a picture drawn by the render API that is a graph (not
its "No Data" placeholder), the pictures refresh on their own, and a screenshot is kept."""

from __future__ import annotations

import html.parser
import shutil
import urllib.parse
import urllib.request

import pytest

from statsd_metrics.grafana.dashboards import load_all

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="./scripts/system-deps"),
]


class Images(html.parser.HTMLParser):
    """The <img> elements of a DOM dump, with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append({k: v or "" for k, v in attrs})


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
        f"{live.render_url}/dashboards/statsd-metrics-service?from=-15min",
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a page of graphs, not a blank one
