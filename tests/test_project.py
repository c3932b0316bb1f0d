"""Checks on the project's own promises: the README's quick start and the package layout."""

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


def test_only_the_two_designed_top_level_packages_are_shipped():
    """statsd_metrics and aggregator: no generic name (`pipeline`, `tests`) in site-packages
    (tests/distribution/test_wheel.py checks the built wheel's top_level.txt)."""
    import configparser

    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    included = setup["options.packages.find"]["include"].split()
    assert {name.split(".")[0] for name in included} == {"statsd_metrics", "aggregator"}
    assert not (ROOT / "pipeline").exists()
