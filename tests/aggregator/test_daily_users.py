"""Black-box: daily active users across separate worker processes, counted once by the daemon.

Each worker is its own Python process with its own statsd_metrics client and socket, as
gunicorn workers are; they share only the pseudonym secret, so one user has one pseudonym.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from statsd_metrics.apart import INTERVAL

from .conftest import ROOT, WAIT, Sink, free_port, wait_until

pytestmark = pytest.mark.slow

SECRET = "9c1f" * 16  # 64 hex characters: a strong shared secret
DAILY = "stats.sets.teamapp.users.active.daily_count"
COUNTER = "stats_counts.teamapp.users.daily_active"

# One application process: counts `users` active through the library's user counting, sends
# at close, prints each user's pseudonym (for the test to look for it where it must not be).
WORKER = """
import sys
from statsd_metrics.business import BusinessMetrics
from statsd_metrics.client import Client
from statsd_metrics.privacy import UserHasher

port, secret, users = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
client = Client(port=port, prefix="teamapp")
hasher = UserHasher(secret)
business = BusinessMetrics(client, hasher=hasher)
for user in users:
    business.user_active(user)
client.close()
print(" ".join(hasher.pseudonym(user) for user in users))
"""


def run_workers(port: int, users_per_worker: list[list[str]]) -> set[str]:
    """Start every worker at once (separate processes, separate sockets); their pseudonyms."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(port), SECRET, *users],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for users in users_per_worker
    ]
    pseudonyms: set[str] = set()
    for worker in workers:
        out, _ = worker.communicate(timeout=WAIT)
        assert worker.returncode == 0
        pseudonyms.update(out.split())
    return pseudonyms


def test_one_user_served_by_four_processes_is_one_daily_user(start_daemon, sink):
    d = start_daemon({"receivers": 2}, flush=0.2)
    after = d.sink.next_flush()
    # the same manager in all four workers, and one user of its own in each
    pseudonyms = run_workers(d.port, [["manager-7", f"own-{i}"] for i in range(4)])
    assert len(pseudonyms) == 5
    flush = sink.wait_flush(lambda f: f.get(DAILY) == "5", after)
    assert flush[DAILY] == "5"
    # a later day's worth of visits by the same users adds nobody
    again = d.sink.next_flush()
    run_workers(d.port, [["manager-7"], ["own-0"], ["manager-7", "own-3"]])
    sink.next_flush()
    sink.next_flush()  # the workers have sent and exited: two flushes hold what they sent
    later = [{p: v for p, v, _ in f} for f in sink.flushes()[again:]]
    assert sum(int(f.get("stats.sets.teamapp.users.active.count", 0)) for f in later) >= 3
    assert later[-1][DAILY] == "5"
    assert max(int(v) for f in sink.flushes() for p, v, _ in f if p == DAILY) == 5
    # what the per-process counter said (it sums one first visit per process and user)
    summed = sum(float(v) for f in sink.flushes() for p, v, _ in f if p == COUNTER)
    print(f"\nfour workers, five users: per-process counter summed {summed:g}, daily_count 5")
    status = d.mgmt("stats")
    assert "daily.members: 5\n" in status
    assert "daily.dropped_members: 0\n" in status
    lines = "\n".join(sink.lines)
    assert not [p for p in pseudonyms if p in lines]


def test_pseudonyms_reach_neither_graphite_nor_the_spool_nor_the_log(start_daemon, tmp_path):
    carbon_port = free_port()
    d = start_daemon({"log_level": "debug", "daily_max_members": 3}, graphite_port=carbon_port)
    probes = [f"{n:016x}" for n in (0xC0FFEE01, 0xC0FFEE02, 0xC0FFEE03, 0xC0FFEE04)]
    d.send(
        "\n".join(f"teamapp.users.active:{p}|s|#env:prod" for p in probes).encode(),
        f"teamapp.users.active:{probes[0]}|s|@zero".encode(),  # rejected: bad sample rate
        f"{probes[1]}|s".encode(),  # rejected: no value
    )
    spool = tmp_path / "spool0"
    wait_until(lambda: len(list(spool.glob("*.txt"))) >= 3, what="spooled flushes")
    spooled = "\n".join(path.read_text() for path in spool.glob("*.txt"))
    assert "daily_count;env=prod 3 " in spooled
    answers = [d.mgmt(command) for command in ("stats", "counters", "gauges", "timers", "config")]
    assert "daily.dropped_members: 1\n" in answers[0]
    carbon = Sink(carbon_port)
    try:
        daily = "stats.sets.teamapp.users.active.daily_count;env=prod 3 "
        wait_until(lambda: any(line.startswith(daily) for line in carbon.lines), what=daily)
        wait_until(lambda: not list(spool.glob("*.txt")), what="an empty spool")
        assert any("daily_sets.dropped_members 1 " in line for line in carbon.lines)
        d.stop()
        places = {
            "spool": spooled,
            "graphite": "\n".join(carbon.lines),
            "log": d.log(),
            "management": "\n".join(answers),
        }
        assert any(
            line.startswith("stats_counts.statsd.bad_lines_seen 2 ") for line in carbon.lines
        )
        leaks = {where: p for where, text in places.items() for p in probes if p in text}
        assert not leaks
    finally:
        carbon.close()


def test_the_benchmark_runs_and_counts_every_member():
    out = subprocess.run(
        [sys.executable, "benchmarks/daily_users.py", "--members", "20000", "--per-flush",
         "2000", "--repeat", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "counted 20,000" in out
    assert "B/member" in out


def test_four_gunicorn_workers_of_the_example_app_count_one_daily_user(start_daemon, tmp_path):
    """The example app under gunicorn, four sync workers, one manager browsing: every worker
    serves them, each worker's client sends their pseudonym, the day counts one user."""
    requests = pytest.importorskip("requests")
    pytest.importorskip("gunicorn")
    d = start_daemon({"receivers": 2}, flush=0.2)
    app_config = {
        "SECRET_KEY": "f" * 64,  # the session cookie must hold in every worker
        "STATSD_METRICS_USER_HASH_SECRET": SECRET,
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": d.port,
        "DEMO_USERS": 2,
        "RATE_LIMITS": {"login": (100, 60.0), "sync": (100, 1.0)},
    }
    port, access = free_port(), tmp_path / "access.log"
    with (tmp_path / "gunicorn.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", f"examples.teamapp.app:create_app({app_config!r})",
             "--bind", f"127.0.0.1:{port}", "--workers", "4", "--no-control-socket",
             "--access-logfile", str(access), "--access-logformat", "%(p)s %(s)s %(U)s",
             "--chdir", str(ROOT)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                return requests.get(f"{base}/health", timeout=5).ok
            except requests.RequestException:  # refused, or a worker still booting
                return False

        wait_until(up, timeout=60, what="gunicorn")
        browser = requests.Session()
        login = {"username": "manager1", "password": "pass-1"}
        assert browser.post(f"{base}/login", data=login, timeout=30).url.endswith("/squad")

        def served_by() -> set[str]:
            lines = access.read_text().splitlines()
            return {pid for pid, status, path in (x.split(" ") for x in lines)
                    if path == "/squad" and status == "200"}  # fmt: skip

        deadline = time.monotonic() + 30
        for _ in range(100):  # a handful of parallel pages at a time until all four served
            with ThreadPoolExecutor(4) as pool:
                pages = list(pool.map(lambda _: browser.get(f"{base}/squad", timeout=30), "abcd"))
            assert all(p.ok for p in pages)
            if len(served_by()) == 4 or time.monotonic() > deadline:
                break
        assert len(served_by()) == 4
        # A pseudonym leaves its worker at the second turn of a 10 s interval at the latest
        # (statsd_metrics/apart.py): up to 20 s after the page that added it.
        flush = d.sink.wait_flush(lambda f: f.get(DAILY) == "1", timeout=2 * INTERVAL + 10)
        for _ in range(10):  # a few more flushes: the workers' clients send every 0.25 s
            d.sink.next_flush()
        daily = [v for f in d.sink.flushes() for p, v, _ in f if p == DAILY]
        assert max(int(v) for v in daily) == 1
        assert flush[DAILY] == "1"
        summed = sum(float(v) for f in d.sink.flushes() for p, v, _ in f if p == COUNTER)
        print(f"\nfour gunicorn workers, one manager: per-process counter summed {summed:g}, "
              f"daily_count {daily[-1]}")  # fmt: skip
    finally:
        server.terminate()
        server.wait(30)
