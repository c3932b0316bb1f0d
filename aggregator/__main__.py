"""`statsd-aggregator` / `python -m aggregator`: parse flags, load config, run the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from . import config as configuration
from .daemon import Daemon
from .receive import ListenError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="statsd-aggregator",
        description="Host StatsD daemon: aggregates StatsD lines and writes Graphite plaintext.",
    )
    p.add_argument("--config", metavar="PATH", help="TOML config file (.json accepted)")
    p.add_argument("--bind", metavar="HOST", help="UDP (and TCP) listen address [127.0.0.1]")
    p.add_argument("--port", type=int, help="UDP port [8125]")
    p.add_argument("--graphite-host", metavar="HOST", help="Carbon host [127.0.0.1]")
    p.add_argument("--graphite-port", type=int, metavar="PORT", help="Carbon plaintext port [2003]")
    p.add_argument("--flush-interval", type=float, metavar="SECONDS", help="flush every [10]")
    p.add_argument("--mgmt-port", type=int, metavar="PORT", help="management + health port [8126]")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flags = {
        "bind": args.bind,
        "port": args.port,
        "graphite_host": args.graphite_host,
        "graphite_port": args.graphite_port,
        "flush_interval": args.flush_interval,
        "mgmt_port": args.mgmt_port,
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    try:
        config = configuration.load(args.config, overrides)
    except configuration.ConfigError as exc:
        print(f"statsd-aggregator: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    daemon = Daemon(config, overrides)
    try:
        daemon.open()
    except ListenError as exc:
        print(f"statsd-aggregator: {exc}", file=sys.stderr)
        return 1
    asyncio.run(daemon.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
