"""Checks on the project's own promises: the README's quick start and the package layout."""

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Quick start\n(.*?)```[^\n]*\n(.*?)```", text, re.M | re.S)
    assert match, "README has no '## Quick start' section with a fenced code block"
    lines = (line.strip() for line in match.group(2).splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_quick_start_holds_exactly_two_commands():
    assert len(quick_start_commands()) == 2


def test_ci_runs_the_readme_test_command():
    test_command = quick_start_commands()[1]
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_no_importable_graphite_package():
    # graphite-web owns the name `graphite`; ours is a configuration folder only.
    assert not (ROOT / "graphite" / "__init__.py").exists()


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "setup.cfg")
    return parser


def test_version_has_one_source_and_a_changelog_entry():
    import statsd_metrics

    assert setup_cfg()["metadata"]["version"] == "attr: statsd_metrics.__version__"
    released = re.findall(r"^## (\d+\.\d+\.\d+) - \d{4}-\d\d-\d\d$", changelog(), re.M)
    assert statsd_metrics.__version__ in released


def changelog() -> str:
    return (ROOT / "CHANGELOG.md").read_text()


def test_license_file_is_the_license_the_metadata_declares():
    metadata = setup_cfg()["metadata"]
    assert metadata["license"] == "MIT"
    assert metadata["license_files"] == "LICENSE"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")


def test_typed_packages_ship_their_marker():
    package_data = setup_cfg()["options.package_data"]
    for package in ("statsd_metrics", "aggregator"):
        assert (ROOT / package / "py.typed").is_file()
        assert "py.typed" in package_data[package]


def test_only_the_two_designed_top_level_packages_are_shipped():
    """statsd_metrics and aggregator: no generic name (`pipeline`, `tests`) in site-packages
    (tests/distribution/test_wheel.py checks the built wheel's top_level.txt)."""
    import configparser

    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    included = setup["options.packages.find"]["include"].split()
    assert {name.split(".")[0] for name in included} == {"statsd_metrics", "aggregator"}
    assert not (ROOT / "pipeline").exists()
