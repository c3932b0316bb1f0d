"""The project's pages link only to files in the repository or to public pages: every relative
link names a file (and a heading) that exists, every absolute one is a public http(s) page, and
no page cites a path on the machine it was written on."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md")], key=lambda p: str(p.relative_to(ROOT))
)
# [text](target) and <https://...> autolinks, outside code spans and fenced blocks
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)|<(https?://[^>\s]+)>")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE = re.compile(r"`[^`\n]*`")
# paths that only exist where the page was written: a shared work area, home directories
LOCAL_PATH = re.compile(r"(?:\.\./)+shared/|shared/reference/|/work/|/root/|/home/\w+/")


def prose(page: Path) -> str:
    return CODE.sub("", FENCE.sub("", page.read_text()))


def links(page: Path) -> list[str]:
    return [a or b for a, b in LINK.findall(prose(page))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def test_there_are_pages_to_check():
    assert {"README.md", "docs/deployment.md"} <= {str(p.relative_to(ROOT)) for p in PAGES}


def problems(page: Path) -> list[str]:
    """What is wrong with each link of `page`: a private address, another scheme, a file or a
    heading that the repository does not have."""
    problems = []
    for target in links(page):
        url = urllib.parse.urlsplit(target)
        if url.scheme in ("http", "https"):
            host = url.hostname or ""
            try:
                private = not ipaddress.ip_address(host).is_global
            except ValueError:
                private = host == "localhost" or "." not in host
            if private:
                problems.append(f"{target}: not a public page")
        elif url.scheme or url.netloc:
            problems.append(f"{target}: neither a repository file nor a public http(s) page")
        else:
            path = (page.parent / urllib.parse.unquote(url.path)).resolve() if url.path else page
            if not path.is_relative_to(ROOT) or not path.exists():
                problems.append(f"{target}: no such file in the repository")
            elif url.fragment and path.suffix == ".md" and url.fragment not in anchors(path):
                problems.append(f"{target}: no heading #{url.fragment} in {path.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_are_repository_files_or_public_pages(page):
    assert not problems(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_cites_a_path_of_the_machine_it_was_written_on(page):
    cited = [m.group(0) for m in LOCAL_PATH.finditer(page.read_text())]
    assert not cited


def test_the_check_catches_what_it_should(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "[a](missing.md) [b](http://127.0.0.1:8888/x) [c](file:///etc/passwd) `[d](x)` "
        "[e](http://grafana/) [f](https://github.com/statsd/statsd) [g](#nowhere)\n# Here\n"
    )
    assert [problem.split(":")[0] for problem in problems(page)] == [
        "missing.md",
        "http",
        "file",
        "http",
        "#nowhere",
    ]
    assert slug("The cluster layout, and more than one machine") == (
        "the-cluster-layout-and-more-than-one-machine"
    )
    assert slug("`statsd-metrics up`") == "statsd-metrics-up"
