"""Coverage-guided fuzzing of the aggregator's parser and flush (atheris, i.e. libFuzzer).

Each input becomes one to four datagrams, parsed under one of four configurations (default;
keys kept raw in the new namespace; tags folded into paths; tiny limits, so that oversized
datagrams, long lines and the name cap are reached), merged into a store and flushed. After
every input it checks what tests/aggregator/test_fuzz.py checks with hypothesis, here with
coverage feedback steering the search:

* nothing raises;
* every rejection is counted once, by reason, and no key is empty or unsanitised;
* every stored value is finite, every timer value >= 0;
* the flush is ASCII `path value timestamp` lines, one metric a line, each value finite, as
  many as the flush says.

Bounded by libFuzzer's own flags. The corpus (built-in seeds plus what the fuzzer finds) grows
in the directory given, by default ~/.cache/statsd-metrics-fuzz/parser, outside the
repository. A failure writes `crash-<sha1>` (the input) in the current directory.

    .venv/bin/python reliability/fuzz_parser.py -max_total_time=600
    .venv/bin/python reliability/fuzz_parser.py -max_total_time=600 -jobs=2 -workers=2 CORPUS
    .venv/bin/python reliability/fuzz_parser.py crash-<sha1>      # replay one input
"""

from __future__ import annotations

import logging
import math
import re
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["aggregator"]):
    from aggregator.config import from_mapping
    from aggregator.flush import Flush
    from aggregator.parse import Parser
    from aggregator.state import Interval, Store

CONFIGS = [
    {},
    {"key_name_sanitize": False, "legacy_namespace": False, "global_suffix": "h1"},
    {
        "tag_mode": "path",
        "percent_thresholds": [90, -10],
        "histogram": [{"metric": "", "bins": [1, 10, "inf"]}],
    },
    {"max_datagram_size": 120, "max_line_length": 40, "max_metric_names": 6},
]
SETUPS = [(Parser(c), Flush(c), c.max_metric_names) for c in map(from_mapping, CONFIGS)]
CLEAN_KEY = re.compile(r"[A-Za-z0-9_.\-;=]+")
LINE = re.compile(r"[A-Za-z0-9_.\-;=]+ -?[0-9.e+\-]+ 1800000000")
SEEDS = [
    b"\x00a:1|c\nt:320|ms|@0.1\ng:-3|g\ns:ana|s",
    b"\x01req:1|c|#status:200,method:get\nlat:5|h:7|d",
    b"\x02x:1e308|c\nx:1e308|c\ny:1e200|ms\nz:+1|g",
    b"\x03" + b"n1:1|c\nn2:1|c\nn3:1|c\nn4:1|c\nn5:1|c\nn6:1|c\nn7:1|c" + b"z" * 130,
    b"\x00caf\xc3\xa9:1|c\r\nbad\xff:1|c\n:1|c\na:0x10|c|@0",
]


def check(datagrams: list[bytes], setup: int) -> None:
    parser, flush, max_names = SETUPS[setup]
    iv = Interval()
    parser.feed_many(datagrams, iv)
    assert iv.packets == len(datagrams)
    assert iv.bad == sum(iv.rejects.values())
    assert iv.names <= max_names
    sanitised = CONFIGS[setup].get("key_name_sanitize", True)
    for mapping in (iv.counters, iv.timers, iv.gauges, iv.sets):
        for key in mapping:
            assert key, mapping
            assert not key.startswith(";"), key
            assert not sanitised or CLEAN_KEY.fullmatch(key), key
    assert all(v >= 0 and math.isfinite(v) for values in iv.timers.values() for v in values)
    store = Store(max_names=max_names)
    flush.init_store(store)
    store.merge([iv], "statsd", None)
    result = flush(store, 1_800_000_000)
    lines = b"".join(result.payload).decode("ascii").split("\n")
    assert lines.pop() == ""
    assert len(lines) == result.lines
    for line in lines:
        assert LINE.fullmatch(line), line
        assert math.isfinite(float(line.split(" ")[1])), line


def one_input(data: bytes) -> None:
    if not data:
        return
    provider = atheris.FuzzedDataProvider(data[1:])
    datagrams = [
        provider.ConsumeBytes(provider.ConsumeIntInRange(0, 400))
        for _ in range(provider.ConsumeIntInRange(1, 4))
    ]
    datagrams[-1] += provider.ConsumeBytes(provider.remaining_bytes())
    check(datagrams, data[0] % len(SETUPS))


def main() -> None:
    logging.disable(logging.WARNING)  # the flush's overflow warnings, thousands a second
    args = sys.argv
    dirs = [a for a in args[1:] if not a.startswith("-")]
    if not dirs:  # the corpus is kept between runs, outside the repository
        dirs = [str(Path.home() / ".cache" / "statsd-metrics-fuzz" / "parser")]
        args = [*args, dirs[0]]
    corpus = Path(dirs[0])
    if not corpus.is_file():  # a directory to grow (not one input to replay)
        corpus.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(SEEDS):
            (corpus / f"seed{i}").write_bytes(seed)
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
