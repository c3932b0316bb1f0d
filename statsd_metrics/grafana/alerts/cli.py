"""`statsd-metrics alerts check`: each alert rule's state against a render API, now or at --at.

    statsd-metrics alerts check --render-url http://127.0.0.1:8888

prints one line per rule (state, group / title, the number its threshold compared, since when),
like `promtool test rules` for Prometheus rules, or the same as JSON with --json. The exit
status is 0 when every rule could be read (a rule whose query failed is in state Error), 1 when
a rule file cannot be used, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from ...supervisor.layout import HOST, Ports
from .evaluate import HttpRenderAPI, RuleState, check
from .rules import RULES_DIR, Query, RuleError, load

DEFAULT_RENDER_URL = f"http://{HOST}:{Ports().render}"


def add_parser(commands: argparse._SubParsersAction) -> None:
    alerts = commands.add_parser("alerts", help="Grafana alert rules without a Grafana")
    actions = alerts.add_subparsers(dest="alerts_command", required=True)
    parser = actions.add_parser(
        "check",
        help="evaluate the alert rules against a render API and print each rule's state",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--render-url", default=DEFAULT_RENDER_URL, help=f"default {DEFAULT_RENDER_URL}"
    )
    parser.add_argument(
        "--rules",
        type=Path,
        default=RULES_DIR,
        help="directory of Grafana alert-rule provisioning files (default: the project's)",
    )
    parser.add_argument(
        "--at",
        type=_instant,
        help="evaluate at this time instead of now: unix seconds or ISO 8601 (UTC if no zone)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable the rule files use, as Grafana's environment would hold it "
        "(default: this process's environment)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def _instant(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def run(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"alerts check: --set {item!r}: expected NAME=VALUE", file=sys.stderr)
            return 2
        env[name] = value
    try:
        rules = load(args.rules, env)
    except RuleError as exc:
        print(f"alerts check: {exc}", file=sys.stderr)
        return 1
    for rule in rules:
        for node in rule.nodes.values():
            if isinstance(node, Query) and "$" in node.target:
                print(
                    f"alerts check: warning: rule {rule.title!r} query {node.ref_id} holds a "
                    "'$': Grafana does not expand variables inside a rule's model and sends it "
                    "to the render API as is",
                    file=sys.stderr,
                )
    states = check(rules, HttpRenderAPI(args.render_url), args.at)
    print(json.dumps([as_json(s) for s in states], indent=2) if args.json else table(states))
    return 0


def as_json(state: RuleState) -> dict:
    return {
        "uid": state.rule.uid,
        "title": state.rule.title,
        "group": state.rule.group,
        "state": state.state,
        "at": state.at,
        "instances": [
            {
                "labels": dict(i.labels),
                "state": i.state,
                "since": i.since,
                "value": i.value,
                "error": i.error,
            }
            for i in state.instances
        ],
    }


def table(states: list[RuleState]) -> str:
    rows = [("STATE", "RULE", "VALUE", "SINCE")]
    for state in states:
        for instance in state.instances:
            name = f"{state.rule.group} / {state.rule.title}"
            if instance.labels:
                name += " {" + ", ".join(f"{k}={v}" for k, v in instance.labels) + "}"
            value = "-" if instance.value is None else f"{instance.value:.4g}"
            since = dt.datetime.fromtimestamp(instance.since, dt.UTC).strftime("%H:%M:%SZ")
            if instance.state == "Pending":
                since += f" (fires after {state.rule.pending:g} s)"
            if instance.error:
                since += f" ({' '.join(instance.error.split())})"
            rows.append((instance.state, name, value, since))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + f"  {row[3]}"
        for row in rows
    )
