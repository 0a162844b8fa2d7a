"""The capstone's scorer, started for a grading kernel in a sandbox of its own.

The hidden tests of notebook 08 score the learner's recipe with
``helpers.capstone.grade``. In the grading sandbox that function does not start the
scorer itself: it sends the pickled recipe over a Unix socket (``LR_COURSE_SCORER``,
in the folder of the kernel's channels) to a :class:`ScorerBroker`, which runs in the
grading process, outside the sandbox, and

- starts the scorer in a sandbox of its own, the only one that sees the instructor's
  private parameters (``LR_COURSE_PRIVATE``, bound read-only there): the kernel, and
  so the learner's code, can neither read the file nor learn where it is. The scorer
  runs no code of the learner's: its first line names the budgets, and the broker
  starts a **planner** in a third sandbox (no private file) that runs the recipe at
  those budgets only to record its plans (the learning rate and the other SGD settings
  of each param group at each step, ``helpers.capstone.plan_of``) and prints them on
  one line; the broker hands that line to the scorer, which checks it and trains with
  it. So nothing a recipe does in its own interpreter (exit early, print a result line,
  patch PyTorch, tamper with the data or the momentum buffers) reaches the training
  that is scored;
- answers with the outcome of each test and nothing else (the scorer's result line is
  parsed and written anew);
- scores once per kernel (:data:`MAX_CALLS`): the hidden tests need one scoring, and
  a learner who calls the scorer from their own cells, to probe the hidden
  parameters one bit at a time, has used it up;
- logs each outcome with the submission, and keeps it (with the gaps to the course's
  recipe, which the kernel never gets) for the grading sandbox to record in the graded
  notebook's metadata, where ``course.py report`` reads it: the distribution of the
  gaps, and grades that disagree with the scorer (a kernel that replaced ``grade``);
- stops the scorer when the kernel stops waiting (a cell interrupted at its timeout)
  or the sandbox is released.
"""
from __future__ import annotations

import json
import math
import os
import select
import socket
import subprocess
import threading
import time
from pathlib import Path

SCORER_ENV = "LR_COURSE_SCORER"
MARKER = "capstone-result:"  # helpers.capstone.MARKER (the kernel's side parses the same line)
BUDGETS_MARKER = "capstone-budgets:"  # helpers.capstone.BUDGETS_MARKER: the scorer's first line
PLAN_MARKER = "capstone-plan:"  # helpers.capstone.PLAN_MARKER: the planner's line
MAX_PLAN_BYTES = 64 * 1024 ** 2  # helpers.capstone.MAX_PLAN_BYTES
KNOWN_MARKER = "capstone-known:"  # helpers.capstone.KNOWN_MARKER: the scorer's first input
CHECKS = ("quick", "short_runs", "long_runs", "decays")  # helpers.capstone.CHECKS: pass or fail
SHARES = ("short_share", "long_share")  # helpers.capstone.SHARES: the share of a test's points, in [0, 1]
TESTS = CHECKS + SHARES
FAILED = {**dict.fromkeys(CHECKS, False), **dict.fromkeys(SHARES, 0.0)}
MAX_CALLS = 1
MAX_PAYLOAD = 64 * 1024 ** 2  # a pickled recipe is a few kB; a model's weights would still fit
MAX_SECONDS = 600.0
LONGEST_LINE = 1 << 16


def parse_result(lines: list[str]) -> tuple[dict, dict[str, float]] | None:
    """({check: passed, share: share of the points}, {budget: gap}) from the scorer's result
    lines; None unless there is exactly one, well formed. A check is True only when the line
    says true, a share a number in [0, 1] (else 0), rounded to 0.01. The gaps (for the
    instructor only) are numbers or left out."""
    found = [ln for ln in lines if ln.startswith(MARKER)]
    if len(found) != 1:
        return None
    try:
        result = json.loads(found[0][len(MARKER):])
    except ValueError:
        return None
    if not isinstance(result, dict):
        return None
    raw = result.get("gaps") if isinstance(result.get("gaps"), dict) else {}
    gaps = {name: float(raw[name]) for name in ("short", "long")
            if isinstance(raw.get(name), (int, float)) and not isinstance(raw.get(name), bool)
            and math.isfinite(raw[name])}
    shares = {name: result.get(name) for name in SHARES}
    return ({**{name: result.get(name) is True for name in CHECKS},
             **{name: round(float(v), 2) if isinstance(v, (int, float)) and not isinstance(v, bool)
                and 0 <= v <= 1 else 0.0 for name, v in shares.items()}}, gaps)


def _read_request(conn: socket.socket) -> tuple[float, bytes] | None:
    """(timeout, payload) of a request: a JSON header line ``{"timeout": s, "size": n}``, then n bytes.

    The kernel keeps its end open while it waits: end of file means it stopped waiting.
    """
    data = bytearray()
    while b"\n" not in data:
        chunk = conn.recv(4096)
        if not chunk or len(data) > LONGEST_LINE:
            return None
        data += chunk
    header, _, rest = bytes(data).partition(b"\n")
    try:
        fields = json.loads(header.decode("utf-8"))
        timeout, size = float(fields["timeout"]), int(fields["size"])
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError):
        return None
    if not (timeout > 0 and 0 <= size <= MAX_PAYLOAD):
        return None
    payload = bytearray(rest)
    while len(payload) < size:
        chunk = conn.recv(min(1 << 16, size - len(payload)))
        if not chunk:
            return None
        payload += chunk
    if len(payload) != size:
        return None
    return min(timeout, MAX_SECONDS), bytes(payload)


def _gone(conn: socket.socket) -> bool:
    """True once the kernel closed its end (it stopped waiting: interrupted, or killed)."""
    ready, _, _ = select.select([conn], [], [], 0)
    if not ready:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _reader(stream, lines: list[str], markers: tuple[str, ...], longest: int) -> threading.Thread:
    """A thread that keeps the lines of ``stream`` that start with one of ``markers`` (at most
    a few, each at most ``longest`` bytes) and reads and drops everything else."""
    def keep():
        for raw in iter(lambda: stream.readline(longest), b""):
            text = raw.decode("utf-8", "replace")
            if text.startswith(markers) and text.endswith("\n") and len(lines) < 4:
                lines.append(text.rstrip("\n"))
        stream.close()
    thread = threading.Thread(target=keep, daemon=True)
    thread.start()
    return thread


class ScorerBroker:
    """Serves one grading kernel's scoring requests on ``path`` (a Unix socket).

    ``command(role)`` returns the command of a fresh sandbox for ``role``: "scorer" (it
    reads ``known`` (a ``helpers.capstone.known_line``: the course's recipe's and the
    baseline's losses, computed once per grading process, or none), prints the budgets,
    reads one line of plans and prints one result line) or "planner" (it reads the
    budgets and the pickled recipe and prints one line of plans); ``log`` is the grading
    process's logger and ``name`` says which submission it serves.
    """

    def __init__(self, path: Path, command, log, name: str, *, max_calls: int = MAX_CALLS, known: str = ""):
        self.path, self._command, self._log, self._name = Path(path), command, log, name
        self._known = known if known.startswith(KNOWN_MARKER) else KNOWN_MARKER + "null"
        self.max_calls, self.calls = max_calls, 0
        self.results: list[dict] = []  # per request: {"tests": {...} or None, "gaps": {...}}
        self._procs: list[subprocess.Popen] = []  # the scorer and the planner of the scoring under way
        self._closed = False
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(self.path))
        os.chmod(self.path, 0o666)  # the kernel's user (65534 when grading as root) connects
        self._sock.listen(4)
        self._thread = threading.Thread(target=self._serve, name=f"scorer {name}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with conn:
                try:
                    self._answer(conn)
                except OSError:
                    pass  # the kernel went away; nothing to answer

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        request = _read_request(conn)
        self.calls += 1
        if request is None or self.calls > self.max_calls:
            why = "a malformed request" if request is None else \
                f"scoring request {self.calls} (one per submission: the hidden tests use it)"
            self._log.warning("capstone scorer: %s sent %s; it is answered with every test failed", self._name, why)
            result, gaps = None, {}
        else:
            parsed = self._score(*request, conn)
            result, gaps = parsed if parsed is not None else (None, {})
            self._log.info("capstone scorer: %s: %s%s", self._name,
                           "no result" if result is None else ", ".join(
                               f"{k} {v:.2f}" if k in SHARES else f"{k} {'passed' if v else 'failed'}"
                               for k, v in result.items()),
                           "".join(f"; gap at the {k} budget {v:.3f} nats/char" for k, v in gaps.items()))
        self.results.append({"tests": result, "gaps": gaps})
        reply = MARKER + json.dumps(result if result is not None else FAILED) + "\n"
        conn.sendall(reply.encode())

    def _start(self, role: str) -> subprocess.Popen | None:
        with self._lock:
            if self._closed:
                return None
            proc = subprocess.Popen(self._command(role), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
            self._procs.append(proc)
            return proc

    def _wait(self, done, deadline: float, conn: socket.socket) -> bool:
        """Wait until ``done()``; False (after stopping every process of this scoring) when the
        time is up, the kernel stopped waiting or the broker closed first."""
        while not done():
            if time.monotonic() > deadline or _gone(conn) or self._closed:
                self._stop_all()
                return False
            time.sleep(0.05)
        return True

    def _score(self, timeout: float, payload: bytes, conn: socket.socket) -> tuple[dict, dict] | None:
        """Scorer and planner (see the module's docstring): the scorer's first line gives the
        budgets, the planner gets them with the recipe and prints one line of plans, the scorer
        gets that line and prints the result."""
        deadline = time.monotonic() + timeout
        try:
            scorer = self._start("scorer")
            if scorer is None:
                return None
            said: list[str] = []
            scoring = _reader(scorer.stdout, said, (BUDGETS_MARKER, MARKER), LONGEST_LINE)
            try:
                scorer.stdin.write(self._known.encode() + b"\n")
                scorer.stdin.flush()
            except OSError:
                return None
            if not self._wait(lambda: said or scorer.poll() is not None, deadline, conn):
                return None
            if not said or not said[0].startswith(BUDGETS_MARKER):
                return None
            planner = self._start("planner")
            if planner is None:
                return None
            planned: list[str] = []
            reading = _reader(planner.stdout, planned, (PLAN_MARKER,), MAX_PLAN_BYTES)
            try:
                planner.stdin.write(said[0][len(BUDGETS_MARKER):].encode() + b"\n" + payload)
                planner.stdin.close()
            except OSError:
                pass  # the planner stopped early; its exit status says so
            if not self._wait(lambda: planner.poll() is not None, deadline, conn):
                return None
            reading.join(5)
            if planner.returncode != 0 or len(planned) != 1:
                return None
            try:
                scorer.stdin.write(planned[0].encode() + b"\n")
                scorer.stdin.close()
            except OSError:
                return None
            if not self._wait(lambda: scorer.poll() is not None, deadline, conn):
                return None
            scoring.join(5)
            return parse_result(said) if scorer.returncode == 0 else None
        finally:
            self._stop_all()

    def _stop_all(self) -> None:
        with self._lock:
            procs, self._procs = self._procs, []
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop serving and stop a scorer that still runs. Idempotent."""
        with self._lock:
            self._closed = True
        for end in (lambda: self._sock.shutdown(socket.SHUT_RDWR), self._sock.close):
            try:
                end()  # shutdown wakes the thread blocked in accept()
            except OSError:
                pass
        self._stop_all()
        try:
            self.path.unlink()
        except OSError:
            pass
