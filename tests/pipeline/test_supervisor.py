"""The supervisor with small stand-in processes: order, readiness, failures, stopping."""

import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from statsd_metrics.supervisor import (
    Part,
    PipelineError,
    Supervisor,
    check_dependencies,
    check_ports_free,
)

# A stand-in part: notes "start NAME" in a journal, and "stop NAME" when it gets SIGTERM.
CHILD = """
import signal, sys, time
journal, name, on_term = sys.argv[1], sys.argv[2], sys.argv[3]
def note(event):
    with open(journal, "a") as f:
        f.write(f"{event} {name}\\n")
def term(*_):
    note("stop")
    if on_term == "exit":
        sys.exit(0)
signal.signal(signal.SIGTERM, term)
note("start")
time.sleep(60)
"""


def journal_lines(journal: Path) -> list[str]:
    return journal.read_text().splitlines() if journal.exists() else []


def child(journal: Path, name: str, on_term: str = "exit", **kwargs) -> Part:
    starts = 0

    def ready() -> bool:
        """A new "start" line: after a restart, the old process's line does not count."""
        nonlocal starts
        seen = journal_lines(journal).count(f"start {name}")
        if seen > starts:
            starts = seen
            return True
        return False

    return Part(
        name=name,
        argv=[sys.executable, "-c", CHILD, str(journal), name, on_term],
        ready=ready,
        **kwargs,
    )


@pytest.fixture
def stop_event() -> threading.Event:
    return threading.Event()


def test_starts_in_order_after_each_answers_and_stops_in_reverse(tmp_path: Path, stop_event):
    journal = tmp_path / "journal"
    supervisor = Supervisor(
        [child(journal, "storage"), child(journal, "relay"), child(journal, "feeder")],
        tmp_path / "log",
    )
    supervisor.start(stop_event)
    assert journal_lines(journal) == ["start storage", "start relay", "start feeder"]
    assert supervisor.stop() == []
    assert journal_lines(journal)[3:] == ["stop feeder", "stop relay", "stop storage"]


def test_part_that_exits_during_start_up_is_named_with_its_log(tmp_path: Path, stop_event):
    journal = tmp_path / "journal"
    failing = Part(
        name="carbon-cache a",
        argv=[sys.executable, "-c", "import sys; print('bad retention 7q'); sys.exit(3)"],
        ready=lambda: False,
    )
    supervisor = Supervisor([child(journal, "first"), failing], tmp_path / "log")
    with pytest.raises(PipelineError) as error:
        supervisor.start(stop_event)
    message = str(error.value)
    assert "carbon-cache a exited during start-up (exit status 3)" in message
    assert "bad retention 7q" in message
    # What had started was stopped again.
    assert journal_lines(journal) == ["start first", "stop first"]
    assert supervisor.started == []


def test_part_that_never_answers_times_out_and_is_stopped(tmp_path: Path, stop_event):
    journal = tmp_path / "journal"
    silent = child(journal, "silent")
    silent.ready = lambda: False
    supervisor = Supervisor([silent], tmp_path / "log", start_timeout=1.0)
    began = time.monotonic()
    with pytest.raises(PipelineError, match="silent did not answer within 1 s"):
        supervisor.start(stop_event)
    assert time.monotonic() - began < 10
    assert silent.process.poll() is not None


def test_stop_request_during_start_up_stops_what_started(tmp_path: Path, stop_event):
    journal = tmp_path / "journal"
    slow = child(journal, "slow")
    slow.ready = lambda: False
    threading.Timer(0.5, stop_event.set).start()
    supervisor = Supervisor([child(journal, "first"), slow], tmp_path / "log")
    with pytest.raises(PipelineError, match="interrupted while starting slow"):
        supervisor.start(stop_event)
    assert journal_lines(journal)[-1] == "stop first"


def test_part_ignoring_sigterm_is_killed_after_its_timeout(tmp_path: Path, stop_event):
    journal = tmp_path / "journal"
    stubborn = child(journal, "stubborn", on_term="ignore", stop_timeout=0.5)
    supervisor = Supervisor([stubborn], tmp_path / "log")
    supervisor.start(stop_event)
    assert supervisor.stop() == ["stubborn did not stop within 0.5 s and was killed"]
    assert stubborn.process.returncode == -9


def test_watch_reports_a_part_that_dies_and_starts_it_again(tmp_path: Path, stop_event):
    journal = tmp_path / "journal"
    prepared = []
    part = child(journal, "render API", prepare=lambda: prepared.append(1))
    reports: list[str] = []
    supervisor = Supervisor([part], tmp_path / "log", report=reports.append, restart_pause=0.01)
    supervisor.start(stop_event)
    part.process.kill()

    def stop_once_back() -> None:
        deadline = time.monotonic() + 10
        while not any("is back" in r for r in reports) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop_event.set()

    # watch() runs here, on the thread that started the parts: a part gets SIGTERM when the
    # thread that started it ends (PR_SET_PDEATHSIG), as in `up`.
    threading.Thread(target=stop_once_back).start()
    supervisor.watch(stop_event)
    assert journal_lines(journal) == ["start render API", "start render API"]
    assert reports[0].startswith("render API exited unexpectedly (exit status -9)")
    assert reports[0].endswith("restarting it in 0.01 s")
    assert reports[1] == "render API is back (restart 1 within 600 s)"
    assert len(prepared) == 2  # before each start
    assert supervisor.stop() == []
    assert journal_lines(journal)[-1] == "stop render API"


def test_watch_gives_up_on_a_part_that_keeps_exiting(tmp_path: Path, stop_event):
    crashing = Part(
        name="carbon-cache a",
        argv=[sys.executable, "-c", "import time; print('segfault, say'); time.sleep(0.2)"],
        ready=lambda: True,
    )
    reports: list[str] = []
    supervisor = Supervisor(
        [crashing], tmp_path / "log", report=reports.append, restarts=2, restart_pause=0.01
    )
    supervisor.start(stop_event)
    with pytest.raises(PipelineError, match="giving up: 3 exits within 600 s") as error:
        supervisor.watch(stop_event)
    assert "segfault, say" in str(error.value)  # the end of its log, over all its runs
    assert len([r for r in reports if "exited unexpectedly" in r]) == 2
    supervisor.stop()


def test_watch_returns_when_asked_to_stop(tmp_path: Path, stop_event):
    supervisor = Supervisor([child(tmp_path / "journal", "x")], tmp_path / "log")
    supervisor.start(stop_event)
    threading.Timer(0.3, stop_event.set).start()
    supervisor.watch(stop_event)
    supervisor.stop()


def occupied(kind: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    return sock


@pytest.mark.parametrize(
    ("kind", "proto"), [(socket.SOCK_STREAM, "tcp"), (socket.SOCK_DGRAM, "udp")]
)
def test_taken_port_is_named_before_anything_starts(kind, proto):
    with occupied(kind) as sock:
        port = sock.getsockname()[1]
        part = Part(name="render API", argv=["true"], ready=bool, listens=[(port, proto)])
        with pytest.raises(PipelineError, match=f"render API: {proto} port 127.0.0.1:{port}"):
            check_ports_free([part], "127.0.0.1")


def test_taken_port_is_found_even_when_held_with_so_reuseport():
    # carbon itself binds with SO_REUSEPORT; a second carbon would share the port silently.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        part = Part(name="carbon-cache a", argv=["true"], ready=bool, listens=[(port, "tcp")])
        with pytest.raises(PipelineError, match="not available"):
            check_ports_free([part], "127.0.0.1")


def test_one_port_for_two_parts_is_refused():
    parts = [
        Part(name="render API", argv=["true"], ready=bool, listens=[(28888, "tcp")]),
        Part(name="carbon-cache a", argv=["true"], ready=bool, listens=[(28888, "tcp")]),
    ]
    with pytest.raises(
        PipelineError, match="carbon-cache a and render API would both use tcp port 28888"
    ):
        check_ports_free(parts, "127.0.0.1")


def test_out_of_range_port_is_refused():
    part = Part(name="aggregator 1", argv=["true"], ready=bool, listens=[(65625, "udp")])
    with pytest.raises(PipelineError, match="aggregator 1: port 65625 is out of range"):
        check_ports_free([part], "127.0.0.1")


@pytest.mark.parametrize("module", ["no_such_pkg_x", "no_such_pkg_x.__main__"])
def test_missing_python_module_is_named_with_the_install_command(module):
    part = Part(
        name="render API", argv=["true"], ready=bool, modules=["json", module], install="pip it"
    )
    with pytest.raises(PipelineError, match=rf"render API: Python module '{module}'.*\(pip it\)"):
        check_dependencies([part])


def test_missing_program_is_named_with_the_install_command(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    part = Part(
        name="carbon-c-relay",
        argv=["true"],
        ready=bool,
        programs=["carbon-c-relay"],
        install="apt-get install carbon-c-relay",
    )
    with pytest.raises(PipelineError, match=r"'carbon-c-relay' is not on PATH \(apt-get install"):
        check_dependencies([part])


def test_one_port_given_twice_to_one_part_names_both_flags():
    listens = [(28003, "tcp", "--carbon-port"), (28003, "tcp", "--carbonlink-port")]
    part = Part(name="carbon-cache a", argv=["true"], ready=bool, listens=listens)
    with pytest.raises(PipelineError, match=r"carbon-cache a would use tcp port 28003 twice "
                       r"\(--carbon-port and --carbonlink-port\)"):  # fmt: skip
        check_ports_free([part], "127.0.0.1")
