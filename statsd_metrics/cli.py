"""The `statsd-metrics` command.

`statsd-metrics up` runs the whole pipeline in the foreground on loopback and prints, once every
part answers, one address a line on stdout (scripts read them):

    statsd: udp://127.0.0.1:8125
    carbon: tcp://127.0.0.1:2003
    render API: http://127.0.0.1:8888

Progress and errors go to stderr; each part's output to <data dir>/log/.
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

from .grafana.alerts import cli as alerts
from .graphite import config
from .graphite.config import ConfigError
from .supervisor import PipelineError, Supervisor, check_dependencies, check_ports_free
from .supervisor.layout import HOST, Layout, LayoutError, Ports
from .supervisor.parts import demo_banner, parts

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
        "--graphite-config",
        type=Path,
        default=config.GRAPHITE_DIR,
        help="directory of configuration templates (default: the project's graphite/)",
    )
    up_parser.add_argument(
        "--aggregator-config",
        type=Path,
        help="aggregator settings, TOML or JSON (tag_mode is always path)",
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
        help="also run the example team-manager app with a simulated day of users, sending "
        "to the first aggregator, so the dashboards fill on their own (examples/teamapp)",
    )
    up_parser.set_defaults(func=up)
    alerts.add_parser(commands)
    return parser


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One `up` per data directory: two carbon-caches writing one Whisper file corrupt it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir / "up.lock"
    with lock_path.open("a+") as lock:
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
    lines = [f"statsd: udp://{HOST}:{agg.port}" for agg in layout.aggregators]
    lines.append(f"carbon: tcp://{HOST}:{layout.carbon_port}")
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
        pipeline_parts = parts(layout, demo=args.demo)
        check_dependencies(pipeline_parts)
        check_ports_free(pipeline_parts, HOST)
        with data_dir_lock(layout.data_dir):
            config.render(layout, args.graphite_config, args.aggregator_config)
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
    except (LayoutError, ConfigError, PipelineError) as exc:
        _say(f"error: {exc}")
        return 1
    _say("stopped")
    return 0


def _say(message: str) -> None:
    print(f"{PROG} up: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
