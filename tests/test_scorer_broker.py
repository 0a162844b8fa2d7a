"""The capstone's scorer as the grading sandbox runs it (tools/scorer_broker.py).

The kernel's ``helpers.capstone.grade`` sends the recipe to a broker outside the
sandbox, which starts the scorer in a sandbox of its own. These tests put a stand-in
scorer behind a real broker (the command is the only thing replaced) and check what
comes back to the kernel: only which tests pass, once per kernel, nothing after a
timeout or once the kernel stops waiting. The end-to-end run in the real sandboxes,
with a private file the kernel tries to read, is in test_capstone.py.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from helpers import capstone

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import scorer_broker  # noqa: E402
from scorer_broker import MARKER, ScorerBroker  # noqa: E402

SECRET = "seeds=[987654321]"
ALL = {**dict.fromkeys(capstone.CHECKS, True), **dict.fromkeys(capstone.SHARES, 1.0)}
FAILED = {**dict.fromkeys(capstone.CHECKS, False), **dict.fromkeys(capstone.SHARES, 0.0)}


def fake_scorer(body: str) -> list[str]:
    """A scorer that names two budgets, reads the planner's line, then runs ``body``."""
    return [sys.executable, "-c", "import json, os, sys, time\nknown = sys.stdin.buffer.readline()\n"
            f"print({scorer_broker.BUDGETS_MARKER!r} + '[40, 600]', flush=True)\n"
            "plan = sys.stdin.buffer.readline()\n" + body]


def fake_planner(body: str = "") -> list[str]:
    """A planner that reads the budgets and the recipe, runs ``body``, then prints a line of plans."""
    return [sys.executable, "-c", "import json, os, sys\nbudgets = sys.stdin.buffer.readline()\n"
            "recipe = sys.stdin.buffer.read()\n" + body + f"\nprint({scorer_broker.PLAN_MARKER!r} + '{{}}')"]


@pytest.fixture
def broker(tmp_path, monkeypatch, caplog):
    """broker(body, planner="", **kw): a broker whose scorer runs ``body`` after the planner ran
    ``planner``; the kernel's grade() talks to it."""
    made = []

    def start(body: str, planner: str = "", **kw) -> ScorerBroker:
        path = tmp_path / f"s{len(made)}"
        commands = {"scorer": fake_scorer(body), "planner": fake_planner(planner)}
        b = ScorerBroker(path, commands.__getitem__, logging.getLogger("test-broker"), "submission of 'x'",
                         **kw)
        made.append(b)
        monkeypatch.setenv(capstone.SCORER_ENV, str(path))
        return b
    caplog.set_level(logging.INFO, logger="test-broker")
    yield start
    for b in made:
        b.close()


def test_the_markers_agree():
    assert scorer_broker.MARKER == capstone.MARKER and scorer_broker.TESTS == capstone.TESTS
    assert scorer_broker.BUDGETS_MARKER == capstone.BUDGETS_MARKER
    assert scorer_broker.PLAN_MARKER == capstone.PLAN_MARKER
    assert scorer_broker.MAX_PLAN_BYTES == capstone.MAX_PLAN_BYTES
    assert scorer_broker.KNOWN_MARKER == capstone.KNOWN_MARKER
    import grading_sandbox
    assert grading_sandbox.KNOWN_MARKER == capstone.KNOWN_MARKER
    assert scorer_broker.CHECKS == capstone.CHECKS and scorer_broker.SHARES == capstone.SHARES
    assert scorer_broker.SCORER_ENV == capstone.SCORER_ENV


def test_the_kernel_gets_only_which_tests_pass_and_the_shares(broker, caplog):
    """A recipe can print anything, even its own result line, and exit: only booleans and shares in
    [0, 1] (to 0.01) come back; the gaps to the course's recipe stay with the broker (for the
    instructor's report)."""
    body = (f"print({SECRET!r})\n"
            f"print({MARKER!r} + json.dumps({{**{ALL!r}, 'decays': 'yes', 'short_share': 0.123456, "
            f"'long_share': 7, 'leak': {SECRET!r}, 'gaps': {{'short': 0.0123, 'long': 'x', 'other': 5}}}}))\n"
            "sys.stdout.flush(); os._exit(0)\n")
    b = broker(body)
    reply = capstone._ask_broker(os.environ[capstone.SCORER_ENV], b"recipe", 10)
    expected = {**ALL, "decays": False, "short_share": 0.12, "long_share": 0.0}
    assert reply == [MARKER + json.dumps(expected)]
    assert SECRET not in caplog.text and "decays failed" in caplog.text and "submission of 'x'" in caplog.text
    assert "gap at the short budget 0.012" in caplog.text and "0.0123" not in "".join(reply)
    assert b.results == [{"tests": expected, "gaps": {"short": 0.0123}}]


def test_the_planner_gets_the_budgets_and_the_recipe_and_the_scorer_its_line(broker, tmp_path):
    seen = tmp_path / "seen"
    planner = f"open({str(seen)!r} + '-planner', 'wb').write(budgets + recipe)"
    known = capstone.known_line({("reference", "short"): 2.7, ("reference", "long"): 2.1,
                                 ("baseline", "short"): 2.9, ("baseline", "long"): 2.3})
    b = broker(f"open({str(seen)!r} + '-scorer', 'wb').write(known + plan)\nprint({MARKER!r} + json.dumps({ALL!r}))",
               planner=planner, known=known)
    reply = capstone._ask_broker(os.environ[capstone.SCORER_ENV], b"the recipe", 20)
    assert reply == [MARKER + json.dumps(ALL)] and b.calls == 1
    assert (tmp_path / "seen-planner").read_bytes() == b"[40, 600]\nthe recipe"
    assert (tmp_path / "seen-scorer").read_bytes() == \
        known.encode() + b"\n" + scorer_broker.PLAN_MARKER.encode() + b"{}\n"
    assert capstone.read_known(known) == {("reference", "short"): 2.7, ("reference", "long"): 2.1,
                                          ("baseline", "short"): 2.9, ("baseline", "long"): 2.3}


@pytest.mark.parametrize("planner", [
    "sys.exit(3)",  # a recipe that breaks its interpreter
    f"print({scorer_broker.PLAN_MARKER!r} + '{{}}')",  # two lines of plans
    f"print({MARKER!r} + json.dumps({ALL!r})); sys.stdout.flush(); os._exit(0)",  # a forged result, then exit
])
def test_a_planner_that_fails_or_forges_fails_every_test(broker, planner):
    """The scorer's result is the only one read, and only after one line of plans came from a planner
    that exited cleanly: a recipe that prints a result line and exits gets nothing."""
    broker(f"print({MARKER!r} + json.dumps({ALL!r}))", planner=planner)
    assert capstone.grade(capstone.reference(0.1)) == FAILED


def test_the_scorer_reports_its_gaps_to_the_broker_only():
    """The real scorer's line holds the gaps; grade() in a local interpreter returns booleans only."""
    import cloudpickle
    done = capstone._score_here(cloudpickle.dumps(capstone.reference(0.1)), 300)
    assert done is not None
    parsed = scorer_broker.parse_result(done)
    assert parsed is not None and parsed[0] == ALL, parsed
    assert set(parsed[1]) == {"short", "long"} and all(abs(v) < 1e-3 for v in parsed[1].values()), parsed  # the reference itself


def test_grade_returns_the_brokers_answer(broker):
    broker(f"print({MARKER!r} + json.dumps({ALL!r}))")
    assert capstone.grade(capstone.reference(0.1)) == ALL


@pytest.mark.parametrize("body", [
    f"print({MARKER!r} + json.dumps({ALL!r})); sys.exit(3)",  # a result, then an error
    f"print({MARKER!r} + json.dumps({ALL!r})); print({MARKER!r} + '{{}}')",  # two result lines
    f"print({MARKER!r} + '[1, 2]')",  # not a dict
    "print('nothing')",
])
def test_a_scorer_that_fails_fails_every_test(broker, body):
    broker(body)
    assert capstone.grade(capstone.reference(0.1)) == FAILED


def test_one_scoring_per_kernel(broker, caplog):
    """A learner who calls the scorer from their own cell has used it up: the hidden tests get nothing."""
    b = broker(f"print({MARKER!r} + json.dumps({ALL!r}))")
    assert capstone.grade(capstone.reference(0.1)) == ALL
    assert capstone.grade(capstone.reference(0.1)) == FAILED
    assert b.calls == 2 and "scoring request 2" in caplog.text


def test_a_scorer_past_its_timeout_is_stopped(broker, tmp_path):
    pid_file = tmp_path / "pid"
    broker(f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)")
    start = time.monotonic()
    assert capstone.grade(capstone.reference(0.1), timeout=1.5) == FAILED
    assert time.monotonic() - start < 10
    assert not _alive(int(pid_file.read_text()))


def test_a_scorer_is_stopped_when_the_kernel_stops_waiting(broker, tmp_path):
    """An interrupted cell (nbgrader's per-cell timeout) closes the socket: the scorer stops too."""
    pid_file = tmp_path / "pid"
    broker(f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(os.environ[capstone.SCORER_ENV])
        conn.sendall(b'{"timeout": 100, "size": 6}\nrecipe')
        _wait_for(pid_file.exists)
    pid = int(pid_file.read_text())
    _wait_for(lambda: not _alive(pid))


def test_a_malformed_request_is_answered_with_failures(broker):
    broker(f"print({MARKER!r} + json.dumps({ALL!r}))")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(os.environ[capstone.SCORER_ENV])
        conn.sendall(b'{"timeout": 100}\nno size')
        reply = conn.recv(4096).decode()
    assert reply == MARKER + json.dumps(FAILED) + "\n"


def test_closing_the_broker_stops_its_scorer(broker, tmp_path):
    pid_file = tmp_path / "pid"
    b = broker(f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(b.path))
        conn.sendall(b'{"timeout": 100, "size": 6}\nrecipe')
        _wait_for(pid_file.exists)
        b.close()
        pid = int(pid_file.read_text())
        _wait_for(lambda: not _alive(pid))
    assert not b.path.exists()


def test_a_broker_that_cannot_be_reached_fails_every_test(monkeypatch):
    """No fallback to a local scorer: in the sandbox that one could not read the private file."""
    monkeypatch.setenv(capstone.SCORER_ENV, "/nonexistent/socket")
    assert capstone.grade(capstone.reference(0.1), timeout=5) == FAILED


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not yet reaped) counts as stopped
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(condition, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.parametrize("line", ["capstone-known:null", "capstone-known:{}", "nothing",
                                  'capstone-known:{"reference/short": 2.9, "reference/long": 2.1, '
                                  '"baseline/short": 2.7, "baseline/long": 2.3}',  # baseline below the reference
                                  'capstone-known:{"reference/short": NaN, "reference/long": 2.1, '
                                  '"baseline/short": 2.9, "baseline/long": 2.3}'])
def test_a_known_line_that_is_not_usable_is_ignored(line):
    assert capstone.read_known(line) is None


def test_the_reference_run_gives_the_stored_losses():
    """What the grading sandbox runs once per grading process for a private file: under the
    defaults, the stored means."""
    import subprocess
    root = str(Path(__file__).resolve().parents[1])
    code = f"import sys; sys.path.insert(0, {root!r}); from helpers.capstone import _reference_main; _reference_main()"
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert capstone.read_known(done.stdout.strip()) == capstone.reference_losses(capstone.Hidden())
