"""The `statsd-metrics` command.

`statsd-metrics up` runs the whole pipeline in the foreground on loopback and prints, once every
part answers, one address a line on stdout (scripts read them; the render API comes last):

    statsd: udp://127.0.0.1:8125
    aggregator health: http://127.0.0.1:8126/health
    carbon: tcp://127.0.0.1:2003
    dashboards: http://127.0.0.1:8888/dashboards/
    render API: http://127.0.0.1:8888

Progress and errors go to stderr; each part's output to <data dir>/log/.
`statsd-metrics init DIR` writes an editable copy of the configuration `up --config-dir DIR`
runs from; `statsd-metrics alerts check` evaluates the alert rules without a Grafana.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from .graphite import config
from .graphite.config import ConfigError
from .supervisor import PipelineError, Supervisor, check_dependencies, check_ports_free
from .supervisor.carbon_python import ENV as CARBON_PYTHON_ENV
from .supervisor.carbon_python import CarbonPythonError, find
from .supervisor.layout import HOST, Layout, LayoutError, Ports
from .supervisor.parts import SHIPPED_DASHBOARDS, demo_banner, parts

PROG = "statsd-metrics"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser(
        "up",
        help="run carbon-cache, the render API and the aggregator in the foreground",
        description="Run the local pipeline in the foreground on 127.0.0.1 until Ctrl-C or "
        "SIGTERM. Instance N of a part (with --caches/--aggregators) uses its port + 100·N.",
    )
    up_parser.add_argument("--data-dir", type=Path, default=Path("var"), help="default ./var")
    up_parser.add_argument(
        "--flush-interval",
        type=float,
        default=10,
        help="aggregator flush interval and finest Whisper archive, seconds (default 10)",
    )
    up_parser.add_argument(
        "--caches", type=int, default=1, help="carbon-cache instances; >1 adds carbon-c-relay"
    )
    up_parser.add_argument(
        "--aggregators",
        type=int,
        default=1,
        help="aggregators (0: storage and render API only, fed by aggregators elsewhere)",
    )
    defaults = Ports()
    for flag, what in (
        ("statsd", "aggregator StatsD UDP"),
        ("mgmt", "aggregator management TCP"),
        ("carbon", "carbon-cache line receiver"),
        ("pickle", "carbon-cache pickle receiver"),
        ("carbonlink", "carbon-cache query (carbonlink)"),
        ("relay", "carbon-c-relay line receiver (with --caches > 1)"),
        ("render", "render API HTTP"),
    ):
        default = getattr(defaults, flag)
        up_parser.add_argument(
            f"--{flag}-port", type=int, default=default, help=f"{what} (default {default})"
        )
    up_parser.add_argument(
        "--config-dir",
        type=Path,
        help="run from the configuration `statsd-metrics init DIR` wrote: its templates and "
        "its aggregator.toml (default: the copy shipped with the package)",
    )
    up_parser.add_argument(
        "--graphite-config",
        type=Path,
        help="directory of Carbon and render-API templates only (default: --config-dir, else "
        "the shipped graphite/)",
    )
    up_parser.add_argument(
        "--aggregator-config",
        type=Path,
        help="aggregator settings, TOML or JSON (tag_mode is always path; default: "
        "aggregator.toml in --config-dir, if there is one)",
    )
    up_parser.add_argument(
        "--carbon-python",
        metavar="PYTHON",
        help="interpreter for carbon-cache and the render API: carbon 1.1.10 runs on Python "
        f"3.11 only (default: ${CARBON_PYTHON_ENV}, else this one if it can, else "
        "python3.11 on PATH)",
    )
    up_parser.add_argument(
        "--start-timeout",
        type=float,
        default=30.0,
        help="seconds each part has to answer (default 30)",
    )
    up_parser.add_argument(
        "--demo",
        action="store_true",
        help="also run a small demo app with simulated users, sending to the first "
        "aggregator, so the dashboards fill on their own (needs statsd-metrics[demo])",
    )
    up_parser.set_defaults(func=up)
    init_parser = commands.add_parser(
        "init",
        help="write an editable copy of the configuration for `up --config-dir`",
        description="Write into DIR the aggregator's settings (aggregator.toml, every key "
        "commented), the Carbon, Whisper and render-API templates and the Grafana "
        "provisioning, dashboards and alert rules. Existing files are never overwritten.",
    )
    init_parser.add_argument("dir", type=Path, metavar="DIR")
    init_parser.set_defaults(func=init)
    _add_alerts(commands)
    return parser


def _add_alerts(commands: argparse._SubParsersAction) -> None:
    try:
        from .grafana.alerts import cli as alerts  # noqa: PLC0415 (needs the [grafana] extra)
    except ModuleNotFoundError as exc:
        missing = exc.name or "?"
        stub = commands.add_parser("alerts", help="Grafana alert rules without a Grafana")
        stub.add_argument("rest", nargs=argparse.REMAINDER)
        stub.set_defaults(func=lambda _args: _missing_extra("alerts", missing))
    else:
        alerts.add_parser(commands)


# Which extra brings each module a command may miss, for the message that says what to install.
EXTRAS = {
    "yaml": "grafana",
    "grafana_foundation_sdk": "grafana",
    "flask": "demo",
    "sqlalchemy": "demo",
    "requests": "demo",
    "psutil": "demo",
}


def _missing_extra(command: str, module: str) -> int:
    top = module.split(".", maxsplit=1)[0]
    extra = EXTRAS.get(top)
    install = f'pip install "statsd-metrics[{extra}]"' if extra else f"pip install {top}"
    print(f"{PROG} {command}: needs the Python package {top!r}: {install}", file=sys.stderr)
    return 1


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One `up` per data directory: two carbon-caches writing one Whisper file corrupt it.
    A directory that cannot be one is a single line naming it, not a traceback."""
    if data_dir.exists() and not data_dir.is_dir():
        raise PipelineError(f"--data-dir {data_dir}: exists and is not a directory")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = (data_dir / "up.lock").open("a+")
    except OSError as exc:
        raise PipelineError(
            f"--data-dir {data_dir}: cannot use it ({exc.strerror}); pass a directory "
            "this user can write"
        ) from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise PipelineError(
                f"data directory {data_dir} is in use by another `{PROG} up` "
                f"(pid {lock.read().strip() or '?'}); stop it or pass another --data-dir"
            ) from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield


def addresses(layout: Layout) -> list[str]:
    """What a person needs, one `role: address` a line; the render API last (scripts that
    read up to it have everything)."""
    lines = []
    for agg in layout.aggregators:
        lines.append(f"statsd: udp://{HOST}:{agg.port}")
        lines.append(f"aggregator health: http://{HOST}:{agg.mgmt_port}/health")
    lines.append(f"carbon: tcp://{HOST}:{layout.carbon_port}")
    lines.append(f"dashboards: http://{HOST}:{layout.render_port}/dashboards/")
    lines.append(f"render API: http://{HOST}:{layout.render_port}")
    return lines


def up(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    ports = Ports(**{name: getattr(args, f"{name}_port") for name in Ports.__dataclass_fields__})
    try:
        layout = Layout.build(
            args.data_dir,
            ports,
            caches=args.caches,
            aggregators=args.aggregators,
            flush_interval=args.flush_interval,
        )
        if args.demo and not layout.aggregators:
            raise LayoutError("--demo sends to an aggregator: it needs --aggregators 1 or more")
        templates, aggregator_config = _config_sources(args)
        # The data directory first: a second `up` on it is the conflict to report, not the
        # ports its parts hold.
        with data_dir_lock(layout.data_dir):
            python = find(args.carbon_python, layout.data_dir / "python")
            _say(f"carbon-cache and the render API run under {python.describe()}")
            dashboards = templates / "grafana" / "dashboards"
            if not dashboards.is_dir():  # --graphite-config: Carbon and render templates only
                dashboards = SHIPPED_DASHBOARDS
            pipeline_parts = parts(layout, python, demo=args.demo, dashboards=dashboards)
            check_dependencies(pipeline_parts)
            check_ports_free(pipeline_parts, HOST)
            config.render(layout, templates, aggregator_config)
            supervisor = Supervisor(pipeline_parts, layout.log_dir, args.start_timeout, report=_say)
            supervisor.start(stop)
            try:
                print("\n".join(addresses(layout)), flush=True)
                for part in pipeline_parts:
                    if part.name == "demo":
                        _say(demo_banner(part))
                _say(f"running; logs in {layout.log_dir}; Ctrl-C stops")
                supervisor.watch(stop)
                _say("stopping")
            finally:
                for warning in supervisor.stop():
                    _say(f"warning: {warning}")
    except (LayoutError, ConfigError, PipelineError, CarbonPythonError) as exc:
        _say(f"error: {exc}")
        return 1
    _say("stopped")
    return 0


def _config_sources(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """Templates and aggregator settings: the flags, else --config-dir, else the shipped."""
    templates = args.graphite_config or args.config_dir or config.GRAPHITE_DIR
    aggregator_config = args.aggregator_config
    if aggregator_config is None and args.config_dir is not None:
        candidate = args.config_dir / config.AGGREGATOR_FILE
        aggregator_config = candidate if candidate.exists() else None
    for flag, path in (("--config-dir", args.config_dir), ("--graphite-config", templates)):
        if path is not None and not path.is_dir():
            raise ConfigError(f"{flag} {path}: not a directory (`{PROG} init {path}` writes one)")
    return templates, aggregator_config


def init(args: argparse.Namespace) -> int:
    try:
        written = config.write_editable_copy(args.dir)
    except ConfigError as exc:
        print(f"{PROG} init: error: {exc}", file=sys.stderr)
        return 1
    print(f"{PROG} init: wrote {len(written)} files into {args.dir}", file=sys.stderr)
    print(f"run from them: {PROG} up --config-dir {args.dir}")
    return 0


def _say(message: str) -> None:
    print(f"{PROG} up: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ModuleNotFoundError as exc:
        # A command whose extra is not installed: say which, not a traceback.
        if exc.name is None or exc.name.split(".")[0] not in EXTRAS:
            raise
        return _missing_extra(args.command, exc.name)


if __name__ == "__main__":
    sys.exit(main())
