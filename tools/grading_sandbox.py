"""The sandbox every submission's kernel runs in during ``nbgrader autograde``.

nbgrader runs a learner's code as the instructor, in the course folder, next to the
hidden tests and the gradebook. Here every kernel that autograde starts runs under
bubblewrap (``bwrap``, Debian's ``bubblewrap`` package), started by this file through
``nbgrader_config.py``:

- **Who.** When the grader is root, the kernel runs as uid/gid 65534 (``nobody``) on the
  machine, not only inside a namespace: an outer ``bwrap`` builds the file system view
  as root, a few lines of Python drop to 65534, and an inner ``bwrap`` gives the kernel
  its own user namespace. When the grader is an ordinary user (an instructor on
  JupyterHub), one unprivileged ``bwrap`` with a user namespace does it: the kernel
  shows as uid 65534 inside and keeps the instructor's (unprivileged) uid outside.
- **What it sees.** Read-only: the system directories (``/usr`` and its links), the
  Python environment (``sys.prefix``, the base interpreter, every ``sys.path`` folder),
  the ``helpers`` package and a few files of ``/etc``. Writable: a private copy of its
  own working folder (``autograded/<student>/<id>/`` without the notebook being graded,
  which carries the hidden tests), bound at the same path and thrown away afterwards,
  and a private ``/tmp``. Nothing else of the course exists in its view: not
  ``solutions/`` or ``source/``, the gradebook, other submissions, feedback, the
  exchange, the instructor's home. Its environment variables are a short allow-list
  (no tokens of the instructor's).
- **Network.** None: its own network namespace (only its own loopback). The kernel's
  channels are Unix sockets (ZeroMQ ``ipc``) in a folder bound into the sandbox.
- **Limits** (``SandboxLimits``, set with ``LR_COURSE_SANDBOX_*`` variables): memory
  (4 GiB) for the whole sandbox where a memory cgroup can be made (as root, on cgroup v1
  or v2 with the memory controller; ``MemoryGroup``): its processes together with the
  files it writes, since its ``/tmp`` and its working copy live in memory (tmpfs) and
  count there, so the same number bounds its disk use; elsewhere, and in any case, per
  process (``RLIMIT_DATA``); processes and threads (``RLIMIT_NPROC``, 256, counted
  inside the kernel's own user namespace, so other sandboxes and the instructor's own
  processes do not count), size of any file written (``RLIMIT_FSIZE``, 1 GiB), open
  files, no core dumps, and wall time for a whole submission (20 min; nbgrader's
  per-cell timeout stays in nbgrader_config.py). After a first cell that runs past the
  per-cell timeout, the cells after it share one more timeout in all
  (``SandboxedExecute.after_timeout``), so an endless loop that every later test calls
  costs about two timeouts, not one per test.
- **The capstone's scorer** (notebook 08) runs in two more sandboxes of the same kind,
  started by the grading process when the kernel asks for a scoring over a Unix socket
  in its channels folder (``ScorerBroker``, tools/scorer_broker.py): a planner, which
  runs the learner's recipe only to read its plans, and the scorer, which trains with
  those plans, runs no code of the learner's and is the only one that sees the
  instructor's private parameters (``LR_COURSE_PRIVATE``).
- **Lifetime.** ``--unshare-pid --die-with-parent``: the kernel is process 2 of its own
  PID namespace; when it ends, or nbgrader ends, the kernel of that namespace kills
  every process left in it.

Where ``bwrap`` cannot run (macOS, Windows, a Linux without it or without user
namespaces), autograde refuses with an error that names the fix, unless the instructor
sets ``LR_COURSE_UNSANDBOXED_GRADING=1`` (grading then runs as nbgrader does by
default, with a warning on every submission).
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent

from scorer_broker import ScorerBroker

OPT_OUT = "LR_COURSE_UNSANDBOXED_GRADING"
PRIVATE_ENV = "LR_COURSE_PRIVATE"  # the capstone's hidden parameters (helpers/capstone.py)
SCORER_ENV = "LR_COURSE_SCORER"  # the socket of a kernel's capstone scorer (tools/scorer_broker.py)
SANDBOX_UID = 65534  # "nobody" on Debian and most Linux systems
FIX = ("install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`) on a Linux machine "
       "with user namespaces, or grade without a sandbox at your own risk by setting "
       f"{OPT_OUT}=1 (docs/instructors.md, \"Grading untrusted code\")")
GiB = 1024 ** 3
# Environment variables the kernel keeps (everything else, e.g. JUPYTERHUB_API_TOKEN, is dropped).
PASSED_ENV = ("LANG", "LANGUAGE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "PYTHONHASHSEED", "LD_LIBRARY_PATH", "NBGRADER_EXECUTION")
PASSED_PREFIXES = ("LC_", "LR_COURSE_")
ETC_FILES = ("/etc/ld.so.cache", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/localtime",
             "/etc/hosts", "/etc/ssl/certs", "/etc/alternatives", "/etc/fonts", "/etc/matplotlibrc")
SYSTEM_DIRS = ("/usr", "/opt/conda")


class SandboxUnavailable(RuntimeError):
    """Autograde would run learners' code without a sandbox."""


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {raw!r}")
    return value


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one grading kernel (and of every process it starts).

    memory_bytes: memory of the whole sandbox, its processes and the files it writes
        (a memory cgroup, where one can be made), and in any case of each process
        (RLIMIT_DATA), > 0; default 4 GiB (LR_COURSE_SANDBOX_MEMORY_GB). The heaviest
        notebook, 07, needs about 1.3 GiB over its three processes.
    processes: processes and threads of the sandbox (RLIMIT_NPROC), > 0; default 256
        (LR_COURSE_SANDBOX_PROCESSES).
    file_bytes: largest file it may write (RLIMIT_FSIZE), > 0; default 1 GiB
        (LR_COURSE_SANDBOX_FILE_GB).
    open_files: open file descriptors per process (RLIMIT_NOFILE), > 0; default 1024.
    submission_seconds: wall time of one submission's kernel, > 0; default 1200
        (LR_COURSE_SANDBOX_SUBMISSION_SECONDS); then the kernel and everything it
        started are killed.
    """

    memory_bytes: int = 4 * GiB
    processes: int = 256
    file_bytes: int = 1 * GiB
    open_files: int = 1024
    submission_seconds: float = 1200.0

    def __post_init__(self):
        for name in ("memory_bytes", "processes", "file_bytes", "open_files", "submission_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")

    @classmethod
    def from_env(cls) -> "SandboxLimits":
        return cls(memory_bytes=int(_env_number("LR_COURSE_SANDBOX_MEMORY_GB", 4) * GiB),
                   processes=int(_env_number("LR_COURSE_SANDBOX_PROCESSES", 256)),
                   file_bytes=int(_env_number("LR_COURSE_SANDBOX_FILE_GB", 1) * GiB),
                   submission_seconds=_env_number("LR_COURSE_SANDBOX_SUBMISSION_SECONDS", 1200))


def opted_out(environ=None) -> bool:
    """True when the instructor chose to grade without a sandbox (LR_COURSE_UNSANDBOXED_GRADING=1)."""
    return (os.environ if environ is None else environ).get(OPT_OUT, "").strip().lower() in {"1", "true", "yes"}


def find_bwrap() -> str | None:
    """The ``bwrap`` to use: LR_COURSE_BWRAP if set, else the one on PATH; None if there is none."""
    if not sys.platform.startswith("linux"):
        return None
    chosen = os.environ.get("LR_COURSE_BWRAP")
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    return shutil.which("bwrap") or (os.access("/usr/bin/bwrap", os.X_OK) and "/usr/bin/bwrap") or None


@functools.lru_cache(maxsize=None)
def _probe(bwrap: str, privileged: bool) -> str | None:
    """None when a sandbox of the kind we build starts here; else bwrap's complaint."""
    cmd = [bwrap, "--unshare-pid", "--unshare-net", "--die-with-parent", "--ro-bind", "/", "/"]
    cmd += [] if privileged else ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    try:
        done = subprocess.run(cmd + ["--", "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit status {done.returncode}")


def check_available() -> str:
    """The path of a working ``bwrap``; SandboxUnavailable (naming the fix) otherwise."""
    bwrap = find_bwrap()
    if bwrap is None:
        where = "this system" if sys.platform.startswith("linux") else sys.platform
        raise SandboxUnavailable(f"autograde runs learners' code in a bubblewrap sandbox, and `bwrap` "
                                 f"is not available on {where}: {FIX}.")
    problem = _probe(bwrap, os.geteuid() == 0)
    if problem:
        raise SandboxUnavailable(f"autograde runs learners' code in a bubblewrap sandbox, and `bwrap` "
                                 f"cannot start one here ({problem}): {FIX}.")
    return bwrap


def _real(path) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@dataclass
class View:
    """What a grading kernel may read (``readable``) and the private folders it may write."""

    readable: list[Path] = field(default_factory=list)
    hidden: list[Path] = field(default_factory=list)  # never bound, even if an import path lies inside

    def add(self, path) -> None:
        path = _real(path)
        if not path.exists() or any(_inside(h, path) for h in self.hidden):
            return  # never a folder that holds a hidden one (the course)
        if any(_inside(path, r) for r in self.readable):
            return
        self.readable = [r for r in self.readable if not _inside(r, path)] + [path]


def python_view(course: Path) -> View:
    """The environment a kernel of this Python imports from, without ``course`` itself.

    A folder that contains the course (``course`` or above it, e.g. ``''`` or ``.`` on
    sys.path) is left out; the course's ``helpers`` package is bound on its own.
    """
    course = _real(course)
    for system in SYSTEM_DIRS:  # bound whole, read-only: a course inside one would be visible
        if _inside(course, _real(system)):
            raise SandboxUnavailable(f"the course {course} lies inside {system}, which every grading kernel "
                                     "sees: move the course (e.g. to the instructor's home) to grade it")
    view = View(hidden=[course])
    prefixes = [_real(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)]
    candidates = [*prefixes, Path(sys.executable).parent, _real(sys.executable).parent.parent]
    candidates += [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    for entry in sys.path:  # the course's own folders on sys.path (tools/, '') stay out
        if entry and Path(entry).is_absolute() and (not _inside(_real(entry), course) or
                                                     any(_inside(_real(entry), p) for p in prefixes)):
            # A folder that holds the environment (a repository with its .venv, a home) is not
            # bound whole: it would show everything beside the environment, with its own
            # permissions (a 0700 folder hides the interpreter from the sandbox's user).
            if not any(_inside(p, _real(entry)) and p != _real(entry) for p in prefixes):
                candidates.append(entry)
    for path in candidates:
        real = _real(path)
        if real.exists() and real != Path("/"):
            view.add(real)
    for origin in _helpers_origins(course, prefixes):
        view.add(Path(origin).parent)
    return view


def _helpers_origins(course: Path, prefixes: list[Path]) -> list[str]:
    """Where ``helpers`` is imported from: by this process, and by a kernel whose working
    folder is not the course root (through the environment's installation of it)."""
    found = []
    spec = importlib.util.find_spec("helpers")
    if spec is not None and spec.origin:
        found.append(spec.origin)
    saved = sys.path[:]
    try:
        sys.path[:] = [p for p in saved if p and Path(p).is_absolute() and (
            not _inside(_real(p), course) or any(_inside(_real(p), x) for x in prefixes))]
        for finder in sys.meta_path:
            try:
                spec = finder.find_spec("helpers", None)
            except Exception:  # a finder that cannot answer this question
                continue
            if spec is not None and spec.origin:
                found.append(spec.origin)
                break
    finally:
        sys.path[:] = saved
    return found


def _dirs_for(path: Path, made: set) -> list[str]:
    """bwrap options that create every folder above ``path`` as mode 0755 (bwrap's own are 0700)."""
    out = []
    for parent in reversed(path.parents):
        if str(parent) != "/" and parent not in made:
            made.add(parent)
            out += ["--perms", "0755", "--dir", str(parent)]
    return out


# Runs inside the sandbox, before the kernel: resource limits, then the kernel itself.
LIMITS_THEN_EXEC = (
    "import os, resource, sys\n"
    "for name, value in zip(('DATA', 'NPROC', 'FSIZE', 'NOFILE', 'CORE'), map(int, sys.argv[1:6])):\n"
    "    resource.setrlimit(getattr(resource, 'RLIMIT_' + name), (value, value))\n"
    "os.execv(sys.argv[6], sys.argv[6:])\n"
)
# Runs first, outside: bwrap and the kernel start with SIGINT ignored. nbgrader interrupts a
# cell that runs too long with SIGINT to the whole process group; bwrap would die of it
# (and take the kernel along), while ipykernel catches SIGINT only while a cell runs.
# It first joins the sandbox's memory cgroup (argv[1], a cgroup.procs file, or "" for none),
# so that every process of the sandbox, and every page it writes to a tmpfs, counts there.
IGNORE_SIGINT_THEN_EXEC = (
    "import os, signal, sys\n"
    "if sys.argv[1]:\n"
    "    with open(sys.argv[1], 'w') as procs:\n"
    "        procs.write(str(os.getpid()))\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)
# Runs inside the outer (privileged) sandbox: drop to the sandbox user for good.
DROP_THEN_EXEC = (
    "import os, sys\n"
    "os.setgroups([]); os.setgid(int(sys.argv[1])); os.setuid(int(sys.argv[1]))\n"
    "assert os.getuid() == os.geteuid() == int(sys.argv[1]) and os.getgid() == int(sys.argv[1])\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def sandbox_command(kernel_cmd: list[str], *, bwrap: str, workdir: Path, scratch: Path, channels: Path,
                    view: View, limits: SandboxLimits, environ: dict, privileged: bool,
                    hosts: Path | None = None, private: Path | None = None,
                    cgroup_procs: str = "", scorer: str | None = None) -> list[str]:
    """The command that runs ``kernel_cmd`` in a sandbox.

    ``workdir`` is the path the kernel works in (its autograded folder); ``scratch`` is
    the private copy bound there; ``channels`` holds the connection file and sockets;
    ``hosts`` replaces /etc/hosts (the sandbox's host name on its own loopback);
    ``private`` is a copy of the instructor's file of hidden parameters
    (``LR_COURSE_PRIVATE``), bound read-only at :func:`private_inside`, where the
    sandboxed process's ``LR_COURSE_PRIVATE`` points: only the capstone's scorer gets it,
    never a kernel; ``cgroup_procs`` is the ``cgroup.procs`` file of the sandbox's memory
    cgroup ("" for none); ``scorer`` is the socket of the kernel's scorer
    (``LR_COURSE_SCORER``, tools/scorer_broker.py).
    """
    python = sys.executable
    made: set = set()
    cmd = [python, "-I", "-S", "-c", IGNORE_SIGINT_THEN_EXEC, cgroup_procs,
           bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--hostname", "sandbox", "--clearenv"]
    env = {k: v for k, v in environ.items() if k in PASSED_ENV or k.startswith(PASSED_PREFIXES)}
    env.pop(PRIVATE_ENV, None)
    env.pop(SCORER_ENV, None)
    if private is not None:
        env[PRIVATE_ENV] = private_inside(private)
    if scorer is not None:
        env[SCORER_ENV] = scorer
    env.update(HOME="/tmp", TMPDIR="/tmp", MPLCONFIGDIR="/tmp/matplotlib", USER="nobody", LOGNAME="nobody",
               JPY_PARENT_PID="1",  # ipykernel: no parent poller (bwrap is process 1), no console banner
               PATH=os.pathsep.join([str(Path(python).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
               PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    for key, value in sorted(env.items()):
        cmd += ["--setenv", key, value]
    for system in SYSTEM_DIRS:
        if os.path.isdir(system):
            cmd += _dirs_for(Path(system), made) + ["--ro-bind", system, system]
    for link in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / link
        if path.is_symlink():
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            cmd += ["--ro-bind", str(path), str(path)]
    etc = Path("/etc")
    cmd += ["--perms", "0755", "--dir", "/etc"]
    made.add(etc)
    for name in ETC_FILES:
        source = str(hosts) if name == "/etc/hosts" and hosts else name
        if os.path.exists(source):
            cmd += ["--ro-bind", source, name]
    if private is not None:
        cmd += ["--ro-bind", str(private), private_inside(private)]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm",
            "--perms", "1777", "--tmpfs", "/tmp"]
    made.add(Path("/tmp"))
    for path in view.readable:
        if not any(_inside(path, Path(s)) for s in SYSTEM_DIRS):
            cmd += _dirs_for(path, made) + ["--ro-bind", str(path), str(path)]
    cmd += _dirs_for(channels, made) + ["--bind", str(channels), str(channels)]
    cmd += _dirs_for(workdir, made) + ["--bind", str(scratch), str(workdir), "--chdir", str(workdir)]
    limited = [python, "-I", "-S", "-c", LIMITS_THEN_EXEC, str(limits.memory_bytes), str(limits.processes),
               str(limits.file_bytes), str(limits.open_files), "0", *kernel_cmd]
    user_ns = ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    if privileged:
        # bwrap keeps no capability for its child unless asked: keep only setuid/setgid for
        # the drop to 65534, then a second, unprivileged bwrap gives the kernel its own user
        # namespace (RLIMIT_NPROC is not enforced for root, and counts per user namespace).
        inner = [bwrap, *user_ns, "--dev-bind", "/", "/", "--die-with-parent", "--", *limited]
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                python, "-I", "-S", "-c", DROP_THEN_EXEC, str(SANDBOX_UID), *inner]
    else:
        cmd += [*user_ns, "--", *limited]
    return cmd


class MemoryGroup:
    """A memory cgroup holding one sandbox: its processes, and the tmpfs pages they write.

    :meth:`create` makes one under cgroup v1's memory hierarchy or, on cgroup v2, under
    the root where the memory controller is enabled for children; it returns None where
    neither can be written (not root, a container without cgroup access, macOS): the
    per-process limits then stand alone, and :func:`memory_cgroup_problem` says why.
    """

    V1 = Path("/sys/fs/cgroup/memory")
    V2 = Path("/sys/fs/cgroup")

    def __init__(self, path: Path):
        self.path = path
        self.procs = str(path / "cgroup.procs")

    @classmethod
    def create(cls, limit_bytes: int) -> "MemoryGroup | None":
        return cls._create(limit_bytes)[0]

    @classmethod
    def _create(cls, limit_bytes: int) -> tuple["MemoryGroup | None", str]:
        if not limit_bytes > 0:
            raise ValueError(f"limit_bytes must be > 0, got {limit_bytes!r}")
        name = f"lr-course-sandbox-{os.getpid()}-{os.urandom(4).hex()}"
        if (cls.V1 / "memory.limit_in_bytes").exists():
            settings = [("memory.limit_in_bytes", limit_bytes), ("memory.memsw.limit_in_bytes", limit_bytes)]
            base = cls.V1
        elif "memory" in _read(cls.V2 / "cgroup.subtree_control").split():
            settings = [("memory.max", limit_bytes), ("memory.swap.max", 0)]
            base = cls.V2
        else:
            return None, "no cgroup memory controller is available to this process"
        cls.remove_stale(base)
        path = base / name
        try:
            path.mkdir()
        except OSError as err:
            return None, f"cannot make a cgroup under {base} ({err.strerror or err})"
        group = cls(path)
        try:
            for key, value in settings:
                if (path / key).exists() or key.startswith("memory.limit") or key == "memory.max":
                    (path / key).write_text(str(value))
        except OSError as err:
            group.remove()
            return None, f"cannot set a memory limit in {path} ({err.strerror or err})"
        return group, ""

    def oom_kills(self) -> int:
        """How many of the group's processes the kernel killed for going over its limit."""
        for name in ("memory.oom_control", "memory.events"):  # cgroup v1, v2
            for line in _read(self.path / name).splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip().isdigit():
                    return int(value)
        return 0

    def members(self) -> list[int]:
        return [int(pid) for pid in _read(self.path / "cgroup.procs").split()]

    def remove(self, attempts: int = 50) -> bool:
        """Kill what is left in the group (nothing, normally: --die-with-parent) and remove it;
        False if it is still there after ``attempts`` tries (about 25 s for 50)."""
        for attempt in range(attempts):
            for pid in self.members():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.path.rmdir()
                return True
            except FileNotFoundError:
                return True
            except OSError:
                time.sleep(0.02 * (attempt + 1))
        return False

    STALE_SECONDS = 120.0

    @classmethod
    def remove_stale(cls, base: Path) -> list[Path]:
        """Remove the empty groups under ``base`` left by a grading process that ended before
        its cleanup (killed, or stopped by a signal it does not handle); the ones removed.

        A group is named after the process that made it. Only a group that holds no process,
        whose maker is not running and that is older than :data:`STALE_SECONDS` is removed, so
        that a group of a grading process in another PID namespace, which this one cannot
        see, is left alone while it is in use.
        """
        removed = []
        for path in Path(base).glob("lr-course-sandbox-*"):
            maker = path.name.split("-")[3]
            try:
                old = time.time() - path.stat().st_mtime > cls.STALE_SECONDS
            except OSError:
                continue
            if maker.isdigit() and not Path(f"/proc/{maker}").exists() and old and not cls(path).members():
                try:
                    path.rmdir()
                    removed.append(path)
                except OSError:
                    pass
        return removed


def _read(path: Path) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def memory_cgroup_problem() -> str | None:
    """Why the sandbox's memory cannot be limited as a whole here (None: it can)."""
    group, problem = MemoryGroup._create(GiB)
    if group is not None:
        group.remove()
    return problem or None


def memory_folder() -> str:
    """Where a sandbox's files live: a tmpfs (``/dev/shm``) where there is one, so that the
    working copy a kernel writes to counts in its memory cgroup; else ``/tmp``."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else "/tmp"


def private_inside(private: Path) -> str:
    """Where the kernel reads the hidden parameters' file (its suffix says TOML or JSON)."""
    return "/etc/lr-course-private" + Path(private).suffix


def copy_private(environ: dict, folder: Path) -> Path | None:
    """A copy, in the kernel's sandbox folder, of the file ``LR_COURSE_PRIVATE`` names (None if unset).

    A copy, so that the kernel's user (65534 when grading as root) can read it while the
    instructor's own file stays private; the folder is removed with the sandbox. A name
    that is set but is not a file stops grading: the public defaults would decide grades.
    """
    name = (environ.get(PRIVATE_ENV) or "").strip()
    if not name:
        return None
    source = Path(name).expanduser()
    if not source.is_file():
        raise SandboxUnavailable(f"{PRIVATE_ENV}={name} is not a file; set it to the capstone's private "
                                 "parameters (docs/instructors.md, \"Private hidden parameters\") or unset it")
    copy = Path(folder) / ("private" + source.suffix)
    shutil.copyfile(source, copy)
    os.chmod(copy, 0o444)
    return copy


def _chown_tree(path: Path, uid: int) -> None:
    os.lchown(path, uid, uid)
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), uid, uid)


_KNOWN: dict = {}  # sha-256 of a private file -> its scorer's known line (one training per grading process)
KNOWN_MARKER = "capstone-known:"  # helpers.capstone.KNOWN_MARKER


def uses_capstone(workdir) -> bool:
    """True when a notebook of the submission's folder calls the capstone's scorer."""
    return any("helpers.capstone import grade" in _read(nb) for nb in Path(workdir).glob("*.ipynb"))


def known_losses(private: Path, command, log) -> str:
    """The scorer's known line for the private file ``private`` (``helpers.capstone.known_line``):
    the course's recipe and the baseline trained under its parameters, once per grading
    process (``command()`` starts that run in a sandbox that sees the file), instead of in
    every submission's scoring, where they would take most of the 60 s a cell gets.
    "" (the scorer trains them itself) if the run fails."""
    import hashlib
    key = hashlib.sha256(Path(private).read_bytes()).hexdigest()
    if key not in _KNOWN:
        start = time.monotonic()
        try:
            done = subprocess.run(command(), capture_output=True, timeout=1800, check=False)
            lines = [ln for ln in done.stdout.decode("utf-8", "replace").splitlines()
                     if ln.startswith(KNOWN_MARKER)]
        except (OSError, subprocess.TimeoutExpired):
            done, lines = None, []
        if done is not None and done.returncode == 0 and len(lines) == 1:
            _KNOWN[key] = lines[0]
            log.info("capstone scorer: trained the course's recipe and the baseline under the private "
                     "parameters once for this grading process (%.0f s)", time.monotonic() - start)
        else:
            _KNOWN[key] = ""
            log.error("capstone scorer: the course's recipe and the baseline could not be trained under the "
                      "private parameters (%s); every scoring trains them itself",
                      "timed out" if done is None else f"exit status {done.returncode}")
    return _KNOWN[key]


_LIVE: dict = {}  # id -> SandboxedKernelManager whose sandbox is not released yet
_STARTED: list = []  # kernel managers started, in order; SandboxedExecute takes its own back
SCORER_METADATA = "capstone_scorer"  # nb.metadata["lr_course"][...]: what the scorer found, per request

try:  # nbgrader and jupyter_client are there when nbgrader loads this file
    from jupyter_client.manager import AsyncKernelManager
    from nbclient.exceptions import CellTimeoutError
    from nbclient.util import ensure_async
    from nbgrader.preprocessors import Execute
    from traitlets import Float
except ImportError:  # pragma: no cover - the tests of the pure functions need neither
    AsyncKernelManager = Execute = None


if AsyncKernelManager is not None:

    class SandboxedKernelManager(AsyncKernelManager):
        """A kernel manager that starts its kernel inside the grading sandbox."""

        _sandbox_dir: Path | None = None
        _sandbox_timer: threading.Timer | None = None
        _sandbox_workdir: Path | None = None
        _sandbox_group: MemoryGroup | None = None
        _sandbox_broker = None  # ScorerBroker: the capstone's scorer, in a sandbox of its own
        _warned_no_group = False  # once per grading process

        async def _async_pre_start_kernel(self, **kw):
            bwrap = check_available()
            self._sandbox_bwrap = bwrap
            self._sandbox_privileged = os.geteuid() == 0
            self._sandbox_limits = SandboxLimits.from_env()
            # Short path: Unix socket names are limited to ~107 bytes.
            self._sandbox_dir = Path(tempfile.mkdtemp(prefix="lrk-", dir=memory_folder()))
            if self._sandbox_group is not None:  # a restarted kernel gets a fresh group
                self._sandbox_group.remove()
            if self._sandbox_broker is not None:
                self._close_broker()
            if not any(m is self for m in _STARTED):
                _STARTED.append(self)
            _LIVE[id(self)] = self
            group, problem = MemoryGroup._create(self._sandbox_limits.memory_bytes)
            self._sandbox_group = group
            if group is None and not SandboxedKernelManager._warned_no_group:
                SandboxedKernelManager._warned_no_group = True
                self.log.warning("grading sandbox: %s, so memory is limited per process "
                                 "(LR_COURSE_SANDBOX_MEMORY_GB), not for the sandbox as a whole", problem)
            channels = self._sandbox_dir / "c"
            channels.mkdir()
            self.transport = "ipc"
            self.ip = str(channels / "k")
            self.connection_file = str(channels / "kernel.json")
            return await super()._async_pre_start_kernel(**kw)

        def format_kernel_cmd(self, extra_arguments=None):
            cwd = self._launch_args.get("cwd")
            if not cwd:
                # nbgrader always names the submission's folder; falling back to the current
                # folder (the course root) would copy the gradebook and every submission in.
                raise SandboxUnavailable("the grading kernel was started without a working folder; "
                                         "refusing to copy the current folder into its sandbox")
            workdir = _real(cwd)
            self._sandbox_workdir = workdir
            if (Path(workdir) / "gradebook.db").exists():
                raise SandboxUnavailable(f"the grading kernel's working folder {workdir} holds the gradebook: "
                                         "it is the course root, not a submission's folder")
            kernel_cmd = super().format_kernel_cmd(extra_arguments)
            scratch = self._sandbox_dir / "w"
            # The kernel's working copy: the folder's files except the notebook being graded
            # (it holds the hidden tests), written to a private copy thrown away afterwards.
            shutil.copytree(workdir, scratch, symlinks=True, ignore=shutil.ignore_patterns("*.ipynb"))
            course = _course_root(workdir)
            view = python_view(course)
            env = dict(os.environ)
            env.update(self._launch_args.get("env") or {})
            hosts = self._sandbox_dir / "hosts"
            hosts.write_text("127.0.0.1 localhost sandbox\n::1 localhost ip6-localhost ip6-loopback\n")
            private = copy_private(env, self._sandbox_dir)  # outside the kernel's view: for its scorer
            procs = self._sandbox_group.procs if self._sandbox_group else ""
            scorer = self._sandbox_dir / "c" / "s"
            command = functools.partial(self._scorer_command, course, view, env, hosts, private, procs)
            known = known_losses(private, functools.partial(command, role="reference"), self.log) \
                if private is not None and uses_capstone(workdir) else ""
            self._sandbox_broker = ScorerBroker(scorer, command, self.log, submission_of(workdir), known=known)
            return sandbox_command(kernel_cmd, bwrap=self._sandbox_bwrap, workdir=workdir, scratch=scratch,
                                   channels=self._sandbox_dir / "c", view=view, limits=self._sandbox_limits,
                                   environ=env, privileged=self._sandbox_privileged, hosts=hosts,
                                   cgroup_procs=procs, scorer=str(scorer))

        def _scorer_command(self, course, view, env, hosts, private, procs, role="scorer") -> list[str]:
            """A fresh sandbox for one step of a scoring: like the kernel's, with an empty working
            folder and no channels. The scorer ("scorer") gets the private parameters (the kernel
            never sees them) and runs no code of the learner's; the planner ("planner") runs the
            learner's recipe to read its plans, and gets neither; "reference" trains the course's
            recipe and the baseline under the private parameters (:func:`known_losses`)."""
            if role not in ("scorer", "planner", "reference"):
                raise ValueError(f"role must be 'scorer', 'planner' or 'reference', got {role!r}")
            base = Path(tempfile.mkdtemp(prefix="s", dir=self._sandbox_dir))
            (base / "w").mkdir()
            (base / "c").mkdir()
            if self._sandbox_privileged:
                _chown_tree(base, SANDBOX_UID)
            main = {"scorer": "_main", "planner": "_plan_main", "reference": "_reference_main"}[role]
            code = f"from helpers.capstone import {main}; {main}()"
            origins = _helpers_origins(course, [_real(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)])
            if origins:
                root = str(Path(origins[0]).resolve().parent.parent)
                code = f"import sys; sys.path.insert(0, {root!r}); " + code
            return sandbox_command([sys.executable, "-I", "-c", code], bwrap=self._sandbox_bwrap,
                                   workdir=base / "w", scratch=base / "w", channels=base / "c", view=view,
                                   limits=self._sandbox_limits, environ=env, privileged=self._sandbox_privileged,
                                   hosts=hosts, private=None if role == "planner" else private, cgroup_procs=procs)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            if self._sandbox_privileged:
                _chown_tree(self._sandbox_dir, SANDBOX_UID)
            await super()._async_launch_kernel(kernel_cmd, **kw)
            seconds = self._sandbox_limits.submission_seconds
            self._sandbox_timer = threading.Timer(seconds, self._sandbox_expire)
            self._sandbox_timer.daemon = True
            self._sandbox_timer.start()

        def _sandbox_expire(self):
            provisioner = self.provisioner
            pid = getattr(provisioner, "pid", None)
            if pid:
                self.log.error("grading sandbox: %s ran past %g s "
                               "(LR_COURSE_SANDBOX_SUBMISSION_SECONDS); its kernel is stopped and it "
                               "is not graded", submission_of(self._sandbox_workdir),
                               self._sandbox_limits.submission_seconds)
                try:
                    os.kill(pid, signal.SIGKILL)  # bwrap; --die-with-parent takes the rest
                except ProcessLookupError:
                    pass

        async def _async_cleanup_resources(self, restart: bool = False):
            try:
                await super()._async_cleanup_resources(restart=restart)
            finally:
                if not restart:
                    self.sandbox_release()

        def _close_broker(self) -> None:
            broker, self._sandbox_broker = self._sandbox_broker, None
            if broker is not None:
                broker.close()
                self.sandbox_scores = [*getattr(self, "sandbox_scores", []), *broker.results]

        def sandbox_release(self) -> None:
            """Stop the timer, say whether the sandbox went over its memory, remove its files
            and its cgroup. Idempotent; also called after a kernel that died (nbclient then
            skips the cleanup above)."""
            _LIVE.pop(id(self), None)
            if self._sandbox_timer is not None:
                self._sandbox_timer.cancel()
            self._close_broker()
            group, self._sandbox_group = self._sandbox_group, None
            kills = group.oom_kills() if group is not None else 0
            if kills:
                self.log.error("grading sandbox: %s went over its %.3g GiB of memory "
                               "(LR_COURSE_SANDBOX_MEMORY_GB: its processes and the files it "
                               "wrote); %d of its processes were killed, and if the kernel was "
                               "one of them the submission is not graded",
                               submission_of(self._sandbox_workdir), self._sandbox_limits.memory_bytes / GiB,
                               kills)
            if self._sandbox_dir is not None:
                shutil.rmtree(self._sandbox_dir, ignore_errors=True)
                self._sandbox_dir = None
            if group is not None and not group.remove():  # after its files: their pages are charged to it
                self.log.error("grading sandbox: the memory cgroup %s of %s could not be removed (processes "
                               "still in it: %s); the next grading removes it once it is empty",
                               group.path, submission_of(self._sandbox_workdir), group.members() or "none")

    class SandboxedExecute(Execute):
        """nbgrader's Execute preprocessor, with every kernel in the grading sandbox.

        Refuses (SandboxUnavailable) where the sandbox cannot run, unless the instructor
        opted out with LR_COURSE_UNSANDBOXED_GRADING=1.

        A submission's time is bounded, not only each cell's: once a cell has run past
        ``timeout`` (an endless loop, typically in a function every later test calls), the
        cells after it share ``after_timeout`` seconds in all, and once that is spent each
        gets ``min_cell_seconds``. So a looping function costs about two timeouts, not one
        per test cell that calls it; the course's notebooks run whole in well under one
        timeout, so a sound remainder still fits. Every timeout is logged with the
        submission (student and assignment) and the cell.
        """

        after_timeout = Float(None, allow_none=True, help=dedent(
            """Seconds the cells after a first timed-out cell share in all (> 0); default
            (None): the per-cell ``timeout``.""")).tag(config=True)
        min_cell_seconds = Float(2.0, help=dedent(
            """Seconds each cell still gets once ``after_timeout`` is spent (> 0).""")).tag(config=True)

        def __init__(self, *args, **kwargs):
            if opted_out():
                super().__init__(*args, **kwargs)
                self.log.warning("%s is set: this submission is graded WITHOUT a sandbox; its code can "
                                 "read and change everything you can.", OPT_OUT)
            else:
                check_available()
                kwargs["kernel_manager_class"] = SandboxedKernelManager
                super().__init__(*args, **kwargs)
            for name in ("after_timeout", "min_cell_seconds"):
                value = getattr(self, name)
                if value is not None and not value > 0:
                    raise ValueError(f"SandboxedExecute.{name} must be > 0 seconds, got {value!r}")
            if self.timeout_func is None:
                self.timeout_func = self._cell_timeout

        def preprocess(self, nb, resources=None, km=None):
            info = (resources or {}).get("nbgrader", {})
            self._submission = submission_name(info.get("student"), info.get("assignment"))
            self._shared_until = None  # monotonic deadline shared by the cells after a timeout
            before, mark = set(_LIVE), len(_STARTED)
            try:
                return super().preprocess(nb, resources, km)
            finally:  # a kernel that died is not cleaned up by nbclient: its sandbox is, here
                for key in set(_LIVE) - before:
                    manager = _LIVE.get(key)
                    if manager is not None:
                        manager.sandbox_release()
                mine, _STARTED[mark:] = _STARTED[mark:], []
                record_scores(nb, [r for m in mine for r in getattr(m, "sandbox_scores", [])])

        def _cell_timeout(self, cell):
            """The per-cell limit; after a first timeout, what is left of the shared budget."""
            if not self.timeout or self.timeout < 0 or self._shared_until is None:
                return self.timeout
            left = self._shared_until - time.monotonic()
            return max(min(self.min_cell_seconds, float(self.timeout)), min(float(self.timeout), left))

        async def _async_handle_timeout(self, timeout, cell=None):
            # nbclient's own handler, with lines that name the submission and the cell.
            where = cell_name(self.nb, cell)
            self.log.error("%s: %s ran past its %.3g s limit; it is interrupted and scores 0",
                           self._submission, where, timeout)
            if self._shared_until is None:
                shared = self.after_timeout if self.after_timeout is not None else float(self.timeout)
                self._shared_until = time.monotonic() + shared
                self.log.error("%s: the cells after %s share %.3g s in all (then %.3g s each)",
                               self._submission, where, shared, self.min_cell_seconds)
            if not self.interrupt_on_timeout:
                raise CellTimeoutError.error_from_timeout_and_cell("Cell execution timed out", timeout, cell)
            await ensure_async(self.km.interrupt_kernel())
            if self.error_on_timeout:
                return {"content": {**self.error_on_timeout, "status": "error"}}
            return None


def record_scores(nb, scores: list) -> None:
    """Keep in ``nb.metadata["lr_course"]`` what the capstone's scorer found (for ``course.py
    report``); whatever a submitted notebook brought under that name is dropped first."""
    ours = nb.metadata.get("lr_course")
    if not isinstance(ours, dict):
        nb.metadata.pop("lr_course", None)
        ours = {}
    ours.pop(SCORER_METADATA, None)
    if scores:
        ours[SCORER_METADATA] = scores
    if ours:
        nb.metadata["lr_course"] = ours
    else:
        nb.metadata.pop("lr_course", None)


def submission_name(student: str | None, assignment: str | None) -> str:
    """How log lines name a submission: ``submission of 'ada' (01_why_lr_matters)``."""
    return f"submission of '{student or '?'}' ({assignment or '?'})"


def submission_of(workdir: Path | None) -> str:
    """The submission graded in ``autograded/<student>/<assignment>/`` (nbgrader's layout)."""
    if workdir is None:
        return submission_name(None, None)
    return submission_name(Path(workdir).parent.name, Path(workdir).name)


def cell_name(nb, cell) -> str:
    """A cell as an instructor finds it: its grade id, else its position (from 1) among the cells."""
    grade_id = ((cell or {}).get("metadata", {}).get("nbgrader", {}) or {}).get("grade_id")
    if grade_id:
        return f"cell '{grade_id}'"
    position = next((i for i, c in enumerate(getattr(nb, "cells", [])) if c is cell), None)
    return "a cell" if position is None else f"cell {position + 1} (counting from the top)"


def _course_root(workdir: Path) -> Path:
    """The course folder above an autograded/<student>/<id>/ working folder (else the folder itself)."""
    for parent in workdir.parents:
        if (parent / "nbgrader_config.py").exists() or (parent / "gradebook.db").exists():
            return parent
    return workdir.parent


def configure_sandbox(c) -> None:
    """Make ``nbgrader autograde`` run every kernel in the sandbox (config object ``c``)."""
    if Execute is None:
        raise SandboxUnavailable("nbgrader is not importable")
    from nbgrader.converters import Autograde

    default = c.Autograde.autograde_preprocessors if "autograde_preprocessors" in c.Autograde else \
        Autograde.class_traits()["autograde_preprocessors"].default()
    c.Autograde.autograde_preprocessors = [SandboxedExecute if p is Execute else p for p in default]
