"""Every provisioning file read the way Grafana reads it, with the README's environment.

Grafana expands environment variables in datasource fields, dashboard provider options,
contact points, notification policies and a rule's own fields, never inside a rule's
`data[].model`, and never in dashboard JSON (template variables are the dashboard's own, filled
at query time). Whatever reaches the render API must hold no `$`: Grafana would send it as is.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from statsd_metrics.grafana.alerts.rules import RULES_DIR, expand_group, interpolate

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "graphite" / "grafana" / "provisioning"
README = ROOT / "README.md"
ENV_REFERENCE = re.compile(r"\$(\$|\{(\w+)\}|(\w+))")


def grafana_section() -> str:
    text = README.read_text()
    return text[text.index("## Grafana") :].split("\n## ", 1)[0]


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", grafana_section(), re.S)


def readme_environment() -> dict[str, str]:
    """The `export NAME=VALUE` lines of the README's Grafana steps, run from the checkout."""
    env = {}
    for line in shell_blocks()[0].splitlines():
        if match := re.match(r"\s*export (\w+)=(\S+)", line):
            env[match[1]] = match[2].replace("$PWD", str(ROOT))
    return env


def used_variables(value: object) -> set[str]:
    """The environment variables a parsed provisioning value refers to."""
    found: set[str] = set()
    if isinstance(value, str):
        found |= {m[2] or m[3] for m in ENV_REFERENCE.finditer(value) if m[1] != "$"}
    elif isinstance(value, list):
        for item in value:
            found |= used_variables(item)
    elif isinstance(value, dict):
        for item in value.values():
            found |= used_variables(item)
    return found


def load_yaml(name: str) -> dict:
    return yaml.safe_load((PROVISIONING / name).read_text())


def test_the_readme_sets_every_variable_the_provisioning_files_expand():
    env = readme_environment()
    used: set[str] = set()
    for path in PROVISIONING.rglob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        if path.parent.name == "alerting":  # models are not expanded: only the rules' fields
            for group in document.get("groups", []):
                used |= used_variables({k: v for k, v in group.items() if k != "rules"})
                for rule in group["rules"]:
                    used |= used_variables({k: v for k, v in rule.items() if k != "data"})
            used |= used_variables({k: v for k, v in document.items() if k != "groups"})
        else:
            used |= used_variables(document)
    assert used <= set(env), f"used but not exported in the README: {used - set(env)}"
    assert {"GRAPHITE_URL", "STATSD_METRICS_DASHBOARDS", "ALERT_WEBHOOK_URL"} <= used


def test_expanded_with_the_readme_environment_every_setting_is_usable():
    env = readme_environment()
    (datasource,) = interpolate(load_yaml("datasources/graphite.yaml"), env)["datasources"]
    assert datasource["url"] == env["GRAPHITE_URL"]
    assert datasource["url"].startswith("http://")
    (provider,) = interpolate(load_yaml("dashboards/statsd-metrics.yaml"), env)["providers"]
    dashboards = Path(provider["options"]["path"])
    assert sorted(p.name for p in dashboards.glob("*.json")) == [
        "business.json",
        "infrastructure.json",
        "pipeline.json",
        "quality-security.json",
        "service.json",
    ]
    points = interpolate(load_yaml("alerting/contact-points.yaml"), env)["contactPoints"]
    assert points[0]["receivers"][0]["settings"]["url"] == env["ALERT_WEBHOOK_URL"]
    assert Path(env["GF_PATHS_PROVISIONING"]) == PROVISIONING


def test_dashboards_and_rules_share_one_folder_named_by_title():
    # Before: the provider used folderUid and the rules a title, which gave two folders of
    # one title (Grafana 11.3 and later) or no dashboards at all (before 11.3).
    (provider,) = load_yaml("dashboards/statsd-metrics.yaml")["providers"]
    assert "folderUid" not in provider
    folders = {group["folder"] for group in load_yaml("alerting/rules.yaml")["groups"]}
    assert folders == {provider["folder"]}


def test_no_dollar_reaches_the_render_api_from_a_rule():
    env = readme_environment()
    for path in RULES_DIR.glob("*.yaml"):
        for raw in yaml.safe_load(path.read_text()).get("groups", []):
            group = expand_group(raw, env)  # what Grafana expands, and only that
            for rule in group["rules"]:
                for item in rule["data"]:
                    target = item["model"].get("target", "")
                    assert "$" not in target, (rule["title"], target)


def test_no_dollar_is_left_in_a_dashboard_query_once_its_variables_are_filled():
    for path in sorted((ROOT / "graphite" / "grafana" / "dashboards").glob("*.json")):
        model = json.loads(path.read_text())
        declared = {v["name"] for v in model["templating"]["list"]}
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                query = target["target"]
                filled = re.sub(
                    r"\$(\w+)|\$\{(\w+)\}",
                    lambda m, declared=declared: "x" if (m[1] or m[2]) in declared else m[0],
                    query,
                )
                assert "$" not in filled, (path.name, panel["title"], query)


def start_steps(env: dict[str, str]) -> subprocess.CompletedProcess:
    """The README's step 3 with `echo started` in place of Grafana."""
    script = shell_blocks()[1]
    script = re.sub(r"grafana server.*", "echo started", script)
    return subprocess.run(
        ["bash", "-c", script],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_start_steps_stop_naming_a_missing_variable():
    env = readme_environment()
    assert start_steps(env).stdout.strip() == "started"
    for name in ("GRAPHITE_URL", "ALERT_WEBHOOK_URL", "STATSD_METRICS_DASHBOARDS"):
        done = start_steps({k: v for k, v in env.items() if k != name})
        assert done.returncode != 0
        assert "started" not in done.stdout
        assert name in done.stderr
    wrong = start_steps({**env, "STATSD_METRICS_DASHBOARDS": str(ROOT)})
    assert wrong.returncode != 0
    assert "started" not in wrong.stdout
