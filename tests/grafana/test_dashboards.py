"""The dashboards: committed JSON equals what the code builds, and Grafana's schema accepts it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from statsd_metrics.grafana.dashboards import BUILDERS, DASHBOARD_DIR, build_all, load_all, render
from statsd_metrics.grafana.dashboards.graphite_query import GraphiteQuery, Query
from statsd_metrics.grafana.dashboards.panels import DATASOURCE_UID, counts, graph, peaks

ROOT = Path(__file__).resolve().parents[2]
# A copy of the dashboard schema from the shared reference material, kept in the repository so
# that a clean checkout validates on its own; the test below keeps the copy honest.
SCHEMA = Path(__file__).with_name("dashboard.jsonschema.json")
SHARED_SCHEMA = "shared/reference/dashboard.jsonschema.json"


def shared_schema() -> Path | None:
    """The shared reference, where it lies beside the repository (or further up: worktrees)."""
    return next((p / SHARED_SCHEMA for p in ROOT.parents if (p / SHARED_SCHEMA).is_file()), None)


def test_schema_copy_is_the_shared_reference():
    shared = shared_schema()
    if shared is None:
        pytest.skip(f"{SHARED_SCHEMA} is not beside this checkout")
    assert json.loads(SCHEMA.read_text()) == json.loads(shared.read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_committed_json_is_what_the_code_builds():
    built = build_all()
    committed = {p.name: p.read_text() for p in DASHBOARD_DIR.glob("*.json")}
    stale = sorted(name for name in built.keys() | committed.keys()
                   if built.get(name) != committed.get(name))  # fmt: skip
    regenerate = "python -m statsd_metrics.grafana.dashboards"
    assert not stale, f"regenerate with `{regenerate}`: {stale} differ"


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_dashboard_validates_against_grafana_schema(name, validator):
    model = json.loads((DASHBOARD_DIR / f"{name}.json").read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(model)]
    assert not errors


def test_schema_rejects_what_grafana_would(validator):
    """The validation has teeth: a misspelt key and a panel without a type are refused."""
    model = json.loads(render(BUILDERS["service"]()))
    model["refersh"] = "30s"
    del model["panels"][1]["type"]
    errors = {tuple(e.absolute_path): e.message for e in validator.iter_errors(model)}
    assert "'refersh' was unexpected" in errors[()]
    assert ("panels", 1) in errors


def test_one_dashboard_per_concern_with_unique_uids_and_panel_ids():
    models = load_all()
    assert set(models) == {
        "statsd-metrics-service",
        "statsd-metrics-infrastructure",
        "statsd-metrics-business",
        "statsd-metrics-quality-security",
        "statsd-metrics-pipeline",
    }
    for model in models.values():
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids)), model["uid"]


def _targets(model: dict) -> list[str]:
    return [t["target"] for p in model["panels"] for t in p.get("targets", [])]


def _variables(model: dict) -> dict[str, dict]:
    return {v["name"]: v for v in model["templating"]["list"]}


@pytest.mark.parametrize(
    ("uid", "expected"),
    [
        ("statsd-metrics-service", {"prefix", "endpoint"}),
        ("statsd-metrics-infrastructure", {"prefix", "host", "db"}),
        ("statsd-metrics-business", {"prefix", "service"}),
        ("statsd-metrics-quality-security", {"prefix", "endpoint"}),
        ("statsd-metrics-pipeline", {"agent"}),
    ],
)
def test_template_variables_where_users_expect_them(uid, expected):
    model = load_all()[uid]
    variables = _variables(model)
    assert set(variables) == expected
    used = " ".join(_targets(model)) + " " + " ".join(v["query"] for v in variables.values())
    for name in expected:
        assert f"${name}" in used, f"${name} is declared but no query uses it"
    for name in set(re.findall(r"\$(\w+)", used)):
        assert name in variables, f"${name} is used but not declared in {uid}"


def test_every_panel_reads_the_provisioned_datasource():
    for model in load_all().values():
        for panel in model["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == DATASOURCE_UID
            assert panel["targets"], panel["title"]
            assert all(t["datasource"]["uid"] == DATASOURCE_UID for t in panel["targets"])


def test_counts_consolidate_by_sum_and_upper_by_max():
    """Every per-interval count (stats_counts.*) is summed when Grafana asks for fewer points
    than the range holds, and every timer upper (and upper_90) keeps its maximum; the
    consolidation sits outside the functions that combine series (they would reset it), and
    every query reads the series with and without the folded tag segment (group)."""
    for model in load_all().values():
        for target in _targets(model):
            ratio = "asPercent(" in target or "summarize(" in target
            if "stats_counts." in target and not ratio:
                assert re.search(
                    r"consolidateBy\(((groupByNode|sumSeries)\()?group\(stats_counts\.", target
                ), target
                assert "'sum')" in target, target
            if re.search(r"\.upper(_\d+)?\b", target):
                assert re.search(
                    r"consolidateBy\((groupByNode|maxSeries)\(group\(stats\.timers\.", target
                ), target
                assert "'max')" in target, target
            assert not re.search(r"consolidateBy\((alias|aliasByNode)\(", target), target


def test_graphite_query_round_trips_through_the_sdk_runtime():
    from grafana_foundation_sdk.cog import runtime

    query = Query("sumSeries(a.*)").ref_id("B").hide(True).build()
    decoded = runtime.dataquery_from_json(
        query.to_json() | {"datasource": {"type": "graphite"}}, ""
    )
    assert isinstance(decoded, GraphiteQuery)
    assert (decoded.target, decoded.ref_id, decoded.hide) == ("sumSeries(a.*)", "B", True)


def test_graph_assigns_ref_ids_in_order_and_helpers_wrap_targets():
    panel = graph("x", counts("a.count"), peaks("a.upper")).build()
    assert [(t.ref_id, t.target) for t in panel.targets] == [
        ("A", "consolidateBy(a.count, 'sum')"),
        ("B", "consolidateBy(a.upper, 'max')"),
    ]
