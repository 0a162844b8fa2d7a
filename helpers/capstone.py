"""The capstone's hidden scoring (notebook 08), run outside the learner's kernel.

The graded problem is not the notebook's worked one: :func:`graded_model` (a character
model four times wider than the worked example's) trained with SGD and Nesterov momentum,
so that no recipe the notebook builds for AdamW carries over unchanged. The hidden test
cells call :func:`grade` with the learner's ``recipe``. It copies the recipe
(``cloudpickle``: the function and what it refers to, nothing else of the kernel) to
a fresh interpreter (``python -I``), the **planner**, and scores in another, the
**scorer**, which never runs the learner's code:

1. the scorer reads the hidden parameters (:class:`Hidden`: seeds, budgets, held-out
   text, reference peak, margins), from the instructor's private file named by
   ``LR_COURSE_PRIVATE`` where it is set, else the public defaults, and prints the
   budgets, nothing else;
2. the planner gets those budgets and the recipe, calls the recipe at each budget and
   steps its scheduler without data (:func:`plan_of`), recording each SGD param group's
   parameters, learning rate, momentum, dampening and weight decay before every
   ``optimizer.step()``; on the way it checks the rules and watches for what a recipe
   must not do (hooks on the model, its parameters, the optimizer or PyTorch's global
   hook lists; parameters that change outside ``optimizer.step()``; PyTorch or course
   functions replaced). It prints one line: the plan per budget, or null where a rule
   was broken;
3. the scorer checks that line (:func:`checked_plan`) and trains a fresh model with a
   fresh ``torch.optim.SGD`` on each plan (:func:`train_plan`), beside the course's
   recipe and a constant-rate baseline on the same hidden seeds; whatever the recipe
   did in its own interpreter (exit early, print a result line, patch PyTorch, change
   the data or pre-fill momentum buffers) does not reach this training;
4. the scorer prints only the outcome of each test: true or false for the rules and
   the schedule's end, and for each budget the share of the points earned
   (:func:`points_share`: the part of the gap from the baseline to the course's recipe
   the learner's recipe closes, in steps of 0.01), never a hidden parameter or a loss.

A schedule is read from the scheduler before training, so it cannot depend on the
training itself (``ReduceLROnPlateau``, or a factor computed from the weights); the
notebook's rules ask for one computed from the budget.

The learner's kernel holds no cache of scores, no reference recipe and no hidden
parameter, and the feedback shows only the test cells' fixed messages. When grading in
the sandbox, both interpreters run in sandboxes of their own, started from outside by
the grader (tools/scorer_broker.py): only the scorer's can read the private file. What a kernel's
own code can still do (replace :func:`grade` or ``subprocess`` before the test cells
run) is flagged by ``tools/suspicious.py``.

The private file is TOML (Python 3.11+) or JSON, with any of the fields of
:class:`Hidden` (a TOML file may put them under ``[capstone]``); docs/instructors.md,
"Private hidden parameters", says how to use it.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

PRIVATE_ENV = "LR_COURSE_PRIVATE"
TIMEOUT_ENV = "LR_COURSE_CAPSTONE_TIMEOUT"
SCORER_ENV = "LR_COURSE_SCORER"  # set by the grading sandbox: the socket of its scorer (tools/scorer_broker.py)
DEFAULT_TIMEOUT = 55.0  # stays inside nbgrader's 60 s per cell (nbgrader_config.py)
MARKER = "capstone-result:"
BUDGETS_MARKER = "capstone-budgets:"  # the scorer's first line: the budgets the planner plans for
PLAN_MARKER = "capstone-plan:"  # the planner's line: the recipe's plans
KNOWN_MARKER = "capstone-known:"  # the scorer's first input: the course's recipe's and the baseline's losses
MAX_PLAN_BYTES = 64 * 1024 ** 2  # 2000 steps of 10 param groups take about 2 MB
CHECKS = ("quick", "short_runs", "long_runs", "decays")  # pass or fail
SHARES = ("short_share", "long_share")  # the share of a test's points, in [0, 1]
TESTS = CHECKS + SHARES
END_FRACTION = 0.45  # public rule: the learning rate at the end at most this share of the largest ...
END_SHARE = 0.05  # ... on average over this share of the last steps (at least two)


@dataclass(frozen=True)
class Hidden:
    """The hidden parameters of the capstone's grading.

    seeds: 1 to 12 distinct seeds in [0, 2**31); each seeds the initial weights and the batch order.
    quick_budgets: short runs checked for the rules only, each in [20, 100].
    short_budget, long_budget: the two scored budgets, 20 <= short < long <= 2000.
    heldout_modules: standard-library modules of the course's shipped text the score is
        measured on (not the training modules).
    reference_peak: the course's recipe's peak learning rate (SGD, Nesterov momentum 0.9,
        linear warmup over 5 % of the budget, linear decay to 0), in (0, 10).
    baseline_lr: the constant learning rate of the baseline (SGD, Nesterov momentum 0.9), in (0, 10).
    full_credit: the share of the gap from the baseline to the course's recipe (mean held-out
        loss over the seeds) a recipe must close for all of a budget's points, in (0, 1];
        less earns points in proportion.
    """

    seeds: tuple = (2718, 3141, 1618, 1414, 1732, 2236)
    quick_budgets: tuple = (21, 57)
    short_budget: int = 40
    long_budget: int = 600
    heldout_modules: tuple = ("csv", "gettext", "pprint")
    reference_peak: float = 0.1
    baseline_lr: float = 0.01
    full_credit: float = 0.7

    def __post_init__(self):
        seeds, quick, mods = tuple(self.seeds), tuple(self.quick_budgets), tuple(self.heldout_modules)
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "quick_budgets", quick)
        object.__setattr__(self, "heldout_modules", mods)
        if not (1 <= len(seeds) <= 12 and len(set(seeds)) == len(seeds)
                and all(isinstance(s, int) and 0 <= s < 2 ** 31 for s in seeds)):
            raise ValueError("seeds must be 1 to 12 distinct integers in [0, 2**31)")
        if not (quick and all(isinstance(b, int) and 20 <= b <= 100 for b in quick)):
            raise ValueError("quick_budgets must be integers in [20, 100]")
        if not (isinstance(self.short_budget, int) and isinstance(self.long_budget, int)
                and 20 <= self.short_budget < self.long_budget <= 2000):
            raise ValueError("short_budget and long_budget must be integers with 20 <= short_budget < "
                             "long_budget <= 2000")
        if not (mods and all(isinstance(m, str) for m in mods)) or set(mods) & set(TRAIN_MODULES):
            raise ValueError("heldout_modules must be module names of the course's text, none of "
                             f"{TRAIN_MODULES}")
        for name in ("reference_peak", "baseline_lr"):
            if not 0 < getattr(self, name) < 10:
                raise ValueError(f"{name} must be in (0, 10)")
        if not 0 < self.full_credit <= 1:
            raise ValueError("full_credit must be in (0, 1]")


TRAIN_MODULES = ("argparse", "configparser", "shlex", "fractions")
BATCH = 64
# The graded problem: the worked example's character model (helpers.models.char_mlp) with
# a hidden layer four times wider and embeddings twice as wide, trained with SGD.
GRADED_MODEL = {"hidden": 512, "embed_dim": 32}


def graded_model(seed: int = 0):
    """The graded problem's model, ``char_mlp(hidden=512, embed_dim=32)``, initialised from ``seed`` (>= 0)."""
    from helpers.models import char_mlp
    return char_mlp(seed=seed, **GRADED_MODEL)


def points_share(loss: float, baseline: float, reference: float, full_credit: float) -> float:
    """The share of a budget's points for a mean held-out ``loss``, in [0, 1], in steps of 0.01.

    The share of the gap from ``baseline`` to ``reference`` (mean losses on the same seeds)
    that ``loss`` closes, divided by ``full_credit`` and clipped: closing ``full_credit`` of
    the gap or more earns every point, closing none (or diverging) earns none. The floor to
    0.01 keeps float noise in the last digits out of the grade.

    >>> points_share(2.0, baseline=2.4, reference=2.0, full_credit=0.75)
    1.0
    >>> points_share(2.2, baseline=2.4, reference=2.0, full_credit=0.75)
    0.66
    >>> points_share(2.5, baseline=2.4, reference=2.0, full_credit=0.75)
    0.0
    """
    if not baseline > reference:
        raise ValueError(f"the baseline ({baseline}) must end above the reference ({reference})")
    if not 0 < full_credit <= 1:
        raise ValueError(f"full_credit must be in (0, 1], got {full_credit}")
    if not math.isfinite(loss):
        return 0.0
    closed = (baseline - loss) / (baseline - reference)
    return math.floor(100 * min(1.0, max(0.0, closed / full_credit)) + 1e-9) / 100


def load_hidden(environ=None) -> Hidden:
    """The hidden parameters: the private file named by LR_COURSE_PRIVATE, else the defaults.

    A missing or malformed file raises (ValueError, FileNotFoundError): grading with the
    public defaults by accident would let a published repository decide the grades.
    """
    path = (os.environ if environ is None else environ).get(PRIVATE_ENV, "").strip()
    if not path:
        return Hidden()
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        data = json.loads(text)
    else:
        import tomllib  # Python 3.11+; on 3.10 use a .json file
        data = tomllib.loads(text)
    data = data.get("capstone", data)
    known = {f.name for f in fields(Hidden)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{PRIVATE_ENV}: unknown capstone fields {unknown}; known: {sorted(known)}")
    return Hidden(**data)


# ---------------------------------------------------------------- the learner's kernel

def grade(recipe, *, timeout: float | None = None) -> dict:
    """Score ``recipe`` in a fresh interpreter: {check: passed} for each of :data:`CHECKS`
    and {share: share of the points, in [0, 1]} for each of :data:`SHARES`.

    Every check is False and every share 0 when the recipe cannot be copied to that interpreter, the
    interpreter fails, or the scoring did not finish within ``timeout`` seconds (> 0).
    The default is ``LR_COURSE_CAPSTONE_TIMEOUT`` where it is set, else 55 s: inside
    nbgrader's 60 s per cell, so a slow recipe fails its tests instead of timing the cell
    out. Scoring the course's recipe takes about 16 s on an idle 2-core machine (the
    scorer uses one thread; the planner runs beside it) and two to three times that on
    cores shared with busy PyTorch processes.

    In the grading sandbox (``LR_COURSE_SCORER`` set), the request goes to the
    sandbox's scorer (tools/scorer_broker.py), which scores in a sandbox of its own,
    the only one that sees the instructor's private parameters, and once per kernel.
    Elsewhere (a learner's own kernel) both interpreters run here as the same user, with
    nothing between them: a recipe could reach the scorer's process, so this is feedback
    for a learner, not grading.
    """
    if timeout is None:
        raw = os.environ.get(TIMEOUT_ENV, "").strip()
        try:
            timeout = float(raw) if raw else DEFAULT_TIMEOUT
        except ValueError:
            raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds > 0, got {raw!r}") from None
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    failed = {**dict.fromkeys(CHECKS, False), **dict.fromkeys(SHARES, 0.0)}
    import cloudpickle  # a dependency of the course (pyproject.toml): without it nothing can be graded
    try:
        payload = cloudpickle.dumps(recipe)
    except Exception:  # noqa: BLE001 - whatever the recipe holds, the answer is "not gradable"
        return failed
    broker = os.environ.get(SCORER_ENV, "").strip()
    if broker:  # in the grading sandbox: the scorer runs in a sandbox of its own
        lines = _ask_broker(broker, payload, timeout)
        if lines is None:
            return failed
    else:
        lines = _score_here(payload, timeout)
        if lines is None:
            return failed
    lines = [ln for ln in lines if ln.startswith(MARKER)]
    if len(lines) != 1:
        return failed
    try:
        result = json.loads(lines[0][len(MARKER):])
    except ValueError:
        return failed
    return read_result(result)


def _score_here(payload: bytes, timeout: float) -> list[str] | None:
    """The scorer's output lines, from two interpreters started here: the scorer, which runs
    no code of the learner's and reads the hidden parameters, and the planner, which runs
    the recipe, sees only the budgets, and prints its plans (None if either failed or ran
    past ``timeout``)."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    planner_env = {k: v for k, v in env.items() if k != PRIVATE_ENV}

    def command(main):
        return [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {root!r}); "
                                            f"from helpers.capstone import {main}; {main}()"]
    deadline = time.monotonic() + timeout
    try:
        scorer = subprocess.Popen(command("_main"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=env)
    except OSError:
        return None
    try:
        scorer.stdin.write(known_line(None).encode() + b"\n")  # no losses computed beforehand here
        scorer.stdin.flush()
        budgets = scorer.stdout.readline()  # its first line, before it loads any data
        if not budgets.startswith(BUDGETS_MARKER.encode()):
            return None
        planned = subprocess.run(command("_plan_main"), input=budgets[len(BUDGETS_MARKER):] + payload,
                                 capture_output=True, env=planner_env, check=False,
                                 timeout=max(0.1, deadline - time.monotonic()))
        found = [ln for ln in planned.stdout.splitlines() if ln.startswith(PLAN_MARKER.encode())]
        if planned.returncode != 0 or len(found) != 1:
            return None
        out, _ = scorer.communicate(found[0] + b"\n", timeout=max(0.1, deadline - time.monotonic()))
    except (subprocess.TimeoutExpired, OSError):
        return None
    finally:
        if scorer.poll() is None:
            scorer.kill()
        scorer.wait()
    return out.decode("utf-8", "replace").splitlines() if scorer.returncode == 0 else None


def read_result(result) -> dict:
    """The outcome in a scorer's result line, each value checked: a check is True only when
    the line says ``true``, a share is a number in [0, 1] (else 0)."""
    result = result if isinstance(result, dict) else {}
    shares = {name: result.get(name) for name in SHARES}
    return {**{name: result.get(name) is True for name in CHECKS},
            **{name: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 else 0.0
               for name, v in shares.items()}}


def _ask_broker(path: str, payload: bytes, timeout: float) -> list[str] | None:
    """The reply lines of the grading sandbox's scorer (tools/scorer_broker.py); None if it failed."""
    import socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout + 30)  # the broker enforces ``timeout``; this only bounds a hang
            conn.connect(path)
            # No half-close: the broker reads the end of file as "stopped waiting" and stops the scorer.
            conn.sendall(json.dumps({"timeout": timeout, "size": len(payload)}).encode() + b"\n" + payload)
            reply = bytearray()
            while len(reply) < 1 << 16:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return None
    return bytes(reply).decode("utf-8", "replace").splitlines()


# ---------------------------------------------------------------- the scoring interpreter

class RuleBroken(Exception):
    """The recipe broke a rule of the grader's loop (or tampered with it)."""


def reference(peak):
    """The course's recipe: SGD with Nesterov momentum 0.9 at ``peak``, linear warmup over
    5 % of the budget, linear decay to 0 at the last step."""
    import torch

    def build(model, budget_steps):
        opt = torch.optim.SGD(model.parameters(), lr=peak, momentum=0.9, nesterov=True)
        w = max(1, round(0.05 * budget_steps))
        return opt, torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: s / w if s < w else max(0.0, (budget_steps - s) / max(1, budget_steps - w)))
    return build


def baseline(lr):
    """The baseline: SGD with Nesterov momentum 0.9 at a constant ``lr``, no schedule."""
    import torch
    return lambda model, budget_steps: (torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True),
                                        None)


def _watched():
    """Identities of the functions the loop relies on: a recipe that replaces one is caught."""
    import torch
    import torch.nn.functional as F

    from helpers import audit, data, models
    found = {}
    owners = [torch, F, torch.Tensor, torch.nn.Module, torch.autograd, torch.optim.Optimizer, audit.LRAudit,
              torch.optim.lr_scheduler.LRScheduler, models, data, torch.Generator, sys.modules[__name__]]
    owners += [v for v in vars(torch.optim).values() if isinstance(v, type)]
    owners += [v for v in vars(torch.optim.lr_scheduler).values() if isinstance(v, type)]
    for owner in owners:
        for name, value in list(vars(owner).items()):
            if callable(value) or isinstance(value, (staticmethod, classmethod, property)):
                found[getattr(owner, "__name__", repr(owner)), name] = id(value)
    return found


def _replaced(before: dict) -> bool:
    """True when a function of ``before`` (from :func:`_watched`) is now another object or gone."""
    now = _watched()
    return any(now.get(key) != value for key, value in before.items())


def _hooks(model, optimizer) -> bool:
    """True when anything is hooked into the model, its parameters, the optimizer or PyTorch globally."""
    import torch
    from torch.nn.modules import module as M
    from torch.optim import optimizer as O
    lists = [M._global_forward_hooks, M._global_forward_pre_hooks, M._global_backward_hooks,
             M._global_backward_pre_hooks, getattr(M, "_global_forward_hooks_always_called", {}),
             O._global_optimizer_pre_hooks, O._global_optimizer_post_hooks,
             optimizer._optimizer_step_pre_hooks, optimizer._optimizer_step_post_hooks,
             getattr(optimizer, "_optimizer_state_dict_pre_hooks", {}),
             getattr(optimizer, "_optimizer_load_state_dict_pre_hooks", {})]
    for m in model.modules():
        lists += [m._forward_hooks, m._forward_pre_hooks, m._backward_hooks, m._backward_pre_hooks,
                  m._state_dict_hooks, m._load_state_dict_pre_hooks]
        if "forward" in vars(m) or "__call__" in vars(m):
            return True
    for p in model.parameters():
        lists += [p._backward_hooks or {}, getattr(p, "_post_accumulate_grad_hooks", None) or {}]
        if type(p) is not torch.nn.Parameter:
            return True
    return any(len(h) for h in lists) or "step" in vars(optimizer) and not _scheduler_wrapper(optimizer)


def _scheduler_wrapper(optimizer) -> bool:
    """PyTorch's LRScheduler wraps ``optimizer.step`` on the instance (to warn about the call order)."""
    step = vars(optimizer)["step"]
    inner = getattr(step, "__wrapped__", None) or getattr(getattr(step, "__func__", None), "__wrapped__", None)
    return getattr(step, "__qualname__", "").startswith(("LRScheduler", "patch_track_step_called")) \
        or inner is not None and getattr(inner, "__func__", inner) is type(optimizer).step


def _snapshot(params: list) -> list:
    """Copies of ``params`` (one fused kernel: the check runs at every step)."""
    import torch
    with torch.no_grad():
        return torch._foreach_add([p.detach() for p in params], 0)


def _unchanged(params: list, snapshot: list) -> bool:
    import torch
    return all(torch.equal(p.detach(), s) for p, s in zip(params, snapshot))


SETTINGS = ("lr", "momentum", "dampening", "weight_decay")  # an SGD group's numbers, recorded at every step
FLAGS = ("nesterov", "maximize")  # an SGD group's switches, fixed for the run


def plan_of(recipe, budget: int, *, watch: bool = True) -> dict:
    """The plan of ``recipe`` at ``budget`` steps: which parameters each SGD param group holds
    (indices into ``graded_model().parameters()``), its switches, and its numbers (learning
    rate, momentum, dampening, weight decay) just before each ``optimizer.step()``.

    The recipe's scheduler is stepped as the grader's loop steps it, on gradients made up
    for the purpose (so that an update made outside ``optimizer.step()`` shows), without
    data: a schedule that depends on the training cannot be read this way, which is why
    the rules ask for one computed from the budget. RuleBroken when a rule is broken.
    """
    import warnings

    import torch
    model = graded_model(0)
    params = list(model.parameters())
    index = {id(p): i for i, p in enumerate(params)}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    is_torch = lambda obj, base: isinstance(obj, base) and type(obj).__module__.startswith("torch.optim")  # noqa
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        opt, sched = recipe(model, budget)
        after = model.state_dict()
        if after.keys() != before.keys() or not all(torch.equal(v, after[k]) for k, v in before.items()):
            raise RuleBroken("weights")
        if type(opt) is not torch.optim.SGD:  # the graded problem's optimizer, not a subclass
            raise RuleBroken("optimizer")
        if not all(id(p) in index for g in opt.param_groups for p in g["params"]):
            raise RuleBroken("parameters")
        if not (sched is None or is_torch(sched, torch.optim.lr_scheduler.LRScheduler) and sched.optimizer is opt):
            raise RuleBroken("scheduler")
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            raise RuleBroken("scheduler")
        if watch and _hooks(model, opt):
            raise RuleBroken("hooks")
        layout = [[index[id(p)] for p in g["params"]] for g in opt.param_groups]
        flags = [[bool(g[k]) for k in FLAGS] for g in opt.param_groups]
        made_up = [torch.full_like(p, 1e-3) for p in params]
        steps, stepped = [], _snapshot(params) if watch else None
        for _ in range(budget):
            for p, g in zip(params, made_up):
                p.grad = g.clone()
            if watch and not _unchanged(params, stepped):
                raise RuleBroken("outside step")
            groups = opt.param_groups
            if [[index.get(id(p)) for p in g["params"]] for g in groups] != layout or \
                    [[bool(g[k]) for k in FLAGS] for g in groups] != flags:
                raise RuleBroken("groups")
            steps.append([[float(g[k]) for k in SETTINGS] for g in groups])
            opt.step()
            stepped = _snapshot(params) if watch else None
            if sched is not None:
                sched.step()
        if watch and not _unchanged(params, stepped):
            raise RuleBroken("outside step")
    return {"groups": layout, "flags": flags, "steps": steps}


def checked_plan(plan, budget: int, n_params: int) -> dict | None:
    """``plan`` (from :func:`plan_of`, read back from JSON) if it is well formed for ``budget``
    steps and ``n_params`` parameters, else None: every setting a finite number >= 0 (no
    negative learning rate, which SGD's constructor refuses but a param group's own value
    does not meet), Nesterov only with momentum and no dampening, each parameter in one group."""
    def numbers(row, n):
        try:
            return isinstance(row, list) and len(row) == n and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in row)
        except OverflowError:  # an integer too large for a float
            return False
    if not isinstance(plan, dict):
        return None
    layout, flags, steps = plan.get("groups"), plan.get("flags"), plan.get("steps")
    if not (isinstance(layout, list) and layout and isinstance(flags, list) and len(flags) == len(layout)
            and isinstance(steps, list) and len(steps) == budget):
        return None
    seen = [i for group in layout if isinstance(group, list) for i in group]
    if not (all(isinstance(group, list) and group for group in layout) and len(seen) == len(set(seen))
            and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n_params for i in seen)):
        return None
    if not all(isinstance(f, list) and len(f) == len(FLAGS) and all(isinstance(v, bool) for v in f) for f in flags):
        return None
    if not all(isinstance(row, list) and len(row) == len(layout) and all(numbers(s, len(SETTINGS)) for s in row)
               for row in steps):
        return None
    # What torch.optim.SGD's constructor asks of its settings, at every step (a param group's
    # own values are not checked by PyTorch): Nesterov needs momentum and no dampening.
    momentum, dampening = SETTINGS.index("momentum"), SETTINGS.index("dampening")
    if any(flag[0] and (s[momentum] <= 0 or s[dampening] != 0) for row in steps for flag, s in zip(flags, row)):
        return None
    return {"groups": layout, "flags": flags, "steps": [[[float(v) for v in s] for s in row] for row in steps]}


def train_plan(plan: dict, budget: int, seed: int, train_data, eval_data):
    """(held-out loss, the learning rates of each param group at each step) after the grader's
    loop with ``plan`` (see :func:`plan_of`): no code of the recipe runs here."""
    import warnings

    import torch
    import torch.nn.functional as F
    X, y = train_data
    model, gen = graded_model(seed), torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    first = plan["steps"][0]
    groups = [{"params": [params[i] for i in layout], **dict(zip(SETTINGS, values)), **dict(zip(FLAGS, flags))}
              for layout, values, flags in zip(plan["groups"], first, plan["flags"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            opt = torch.optim.SGD(groups)
        except ValueError as err:  # checked_plan refuses what SGD would; this is a second guard
            raise RuleBroken(str(err)) from None
        for t in range(budget):
            for group, values in zip(opt.param_groups, plan["steps"][t]):
                group.update(zip(SETTINGS, values))
            i = torch.randint(len(y), (BATCH,), generator=gen)
            opt.zero_grad()
            F.cross_entropy(model(X[i]), y[i]).backward()
            opt.step()
    with torch.no_grad():
        loss = float(F.cross_entropy(model(eval_data[0]), eval_data[1]))
    lrs = [[row[g][0] for row in plan["steps"]] for g in range(len(plan["groups"]))]
    return (loss if math.isfinite(loss) else math.inf), lrs


def train(recipe, budget, seed, train_data, eval_data, *, watch=True):
    """:func:`train_plan` with the plan of ``recipe`` (for the course's own recipes, run in one process)."""
    return train_plan(plan_of(recipe, budget, watch=watch), budget, seed, train_data, eval_data)


# The held-out losses of the course's recipe and of the baseline under the default
# parameters, computed beforehand (stored_losses(Hidden())) to halve the grading time;
# {recipe: {budget name: losses per seed}}.
DEFAULT_LOSSES = {
    "reference": {"short": (2.721009, 2.739675, 2.722008, 2.737705, 2.741142, 2.690127),
                  "long": (2.121773, 2.151157, 2.140145, 2.10596, 2.127806, 2.14465)},
    "baseline": {"short": (2.918954, 2.91827, 2.895064, 2.908452, 2.91494, 2.885513),
                 "long": (2.323524, 2.353407, 2.354421, 2.335059, 2.343211, 2.332263)}}


def stored_losses(hidden: Hidden, train_data=None, held=None) -> dict:
    """{recipe: {budget name: losses per seed}} of the course's recipe and the baseline, run now."""
    if train_data is None:
        train_data, held = _texts(hidden)
    recipes = {"reference": reference(hidden.reference_peak), "baseline": baseline(hidden.baseline_lr)}
    budgets = {"short": hidden.short_budget, "long": hidden.long_budget}
    plans = {(kind, b): plan_of(r, n, watch=False) for kind, r in recipes.items() for b, n in budgets.items()}
    return {kind: {b: tuple(round(train_plan(plans[kind, b], n, s, train_data, held)[0], 6) for s in hidden.seeds)
                   for b, n in budgets.items()} for kind in recipes}


def reference_losses(hidden: Hidden, train_data=None, held=None, *, fresh=False) -> dict:
    """{(recipe, budget name): mean held-out loss over the seeds} of the course's recipe
    ("reference") and the baseline; the stored ones for the default parameters."""
    found = DEFAULT_LOSSES if hidden == Hidden() and not fresh else stored_losses(hidden, train_data, held)
    means = {(kind, b): sum(v) / len(v) for kind, per in found.items() for b, v in per.items()}
    for b in ("short", "long"):
        if not means["baseline", b] > means["reference", b]:
            raise ValueError(f"at the {b} budget the baseline (constant {hidden.baseline_lr}) does not end above "
                             f"the course's recipe (peak {hidden.reference_peak}): choose other parameters")
    return means


def _texts(hidden: Hidden):
    import torch

    from helpers.data import char_lm_tensors
    Xt, yt, _, _ = char_lm_tensors(context=8, val_fraction=0.05, modules=TRAIN_MODULES)
    H = char_lm_tensors(context=8, val_fraction=0.5, modules=hidden.heldout_modules)
    return (Xt, yt), (torch.cat(H[0::2]), torch.cat(H[1::2]))


def follows_budget(lrs_per_group: list[list[float]]) -> bool:
    """The public rule on a schedule's end: in every param group, the mean learning rate of
    the last :data:`END_SHARE` of the steps (at least two) is at most :data:`END_FRACTION`
    of the group's largest. A mean over several steps, so that a rate dropped at the last
    step only does not pass for a schedule that follows the budget, while a cooldown over
    the last 10 % (warmup-stable-decay) does.

    >>> follows_budget([[0.1, 0.05, 0.0], [0.01, 0.001, 0.0]])
    True
    >>> follows_budget([[0.1, 0.1, 0.1], [0.1, 0.01]])  # one group held constant
    False
    >>> follows_budget([[0.1] * 39 + [0.0]])  # dropped at the last of 40 steps only: mean of 2 is 50 %
    False
    >>> follows_budget([[0.1] * 36 + [0.1 * (40 - s) / 4 for s in range(36, 40)]])  # a cooldown over 10 %
    True
    """
    def end(lrs):
        tail = lrs[-max(2, math.ceil(END_SHARE * len(lrs))):]
        return sum(tail) / len(tail)
    return all(bool(lrs) and end(lrs) <= END_FRACTION * max(lrs) for lrs in lrs_per_group)


def budgets_of(hidden: Hidden) -> list[int]:
    """Every budget the recipe is run at: the quick ones and the two scored ones."""
    return sorted({*hidden.quick_budgets, hidden.short_budget, hidden.long_budget})


def plans(recipe, budgets) -> dict:
    """{budget: the recipe's plan (:func:`plan_of`), or None where it broke a rule or raised}."""
    plan_of(reference(0.1), 2)  # loads what a plan loads, before the snapshot of the watched functions
    watched, found = _watched(), {}
    for budget in budgets:
        try:
            plan = plan_of(recipe, budget)
        except Exception:  # noqa: BLE001 - a broken rule and an error in the recipe score alike
            plan = None
        found[budget] = None if plan is None or _replaced(watched) else plan
    return found


def score(plans_found: dict, hidden: Hidden, gaps: dict | None = None, *, texts=None, known=None) -> dict:
    """Every test's outcome (see :func:`read_result`) for the plans of a recipe ({budget:
    plan or None}, as :func:`plans` returns them or as JSON gave them back: checked here).

    ``gaps``, if given, receives the mean held-out gap to the course's recipe at each scored
    budget (``{"short": ..., "long": ...}``, nats/char) where every run finished: for the
    instructor's report (the grading sandbox's scorer logs it), never for the learner.
    ``texts`` and ``known`` (from :func:`_texts` and :func:`reference_losses`) save
    computing them again.
    """
    (Xt, yt), held = texts or _texts(hidden)
    known = known or reference_losses(hidden, (Xt, yt), held)
    n_params = len(list(graded_model(0).parameters()))
    out = {**dict.fromkeys(CHECKS, False), **dict.fromkeys(SHARES, 0.0)}

    def attempt(budget, seed):
        plan = checked_plan(plans_found.get(budget), budget, n_params)
        try:
            return None if plan is None else train_plan(plan, budget, seed, (Xt, yt), held)
        except RuleBroken:
            return None

    out["quick"] = all(attempt(b, s) is not None for b, s in zip(hidden.quick_budgets, hidden.seeds * 12))
    found, ends = {}, []
    for name, budget in {"short": hidden.short_budget, "long": hidden.long_budget}.items():
        runs = [attempt(budget, s) for s in hidden.seeds]
        if any(r is None for r in runs):
            ends.append(False)
            continue
        out[f"{name}_runs"] = all(loss < math.log(96) for loss, _ in runs)
        mine = sum(loss for loss, _ in runs) / len(runs)
        found[name] = mine - known["reference", name]
        if out[f"{name}_runs"]:
            out[f"{name}_share"] = points_share(mine, known["baseline", name], known["reference", name],
                                                hidden.full_credit)
        ends.append(follows_budget(runs[0][1]))  # the plan, and so its rates, is the same for every seed
    out["decays"] = all(ends)
    if gaps is not None:
        gaps.update({name: round(value, 6) for name, value in found.items() if math.isfinite(value)})
    return out


def known_line(known: dict | None) -> str:
    """The line that hands the scorer the course's recipe's and the baseline's mean losses
    (:func:`reference_losses`, computed once per grading process for a private file), or
    none (``null``: the scorer computes them)."""
    body = None if known is None else {f"{kind}/{b}": float(v) for (kind, b), v in known.items()}
    return KNOWN_MARKER + json.dumps(body)


def read_known(line: str) -> dict | None:
    """The mean losses in a :func:`known_line` (None unless all four are finite numbers and
    the baseline ends above the course's recipe at both budgets)."""
    try:
        body = json.loads(line[len(KNOWN_MARKER):]) if line.startswith(KNOWN_MARKER) else None
    except ValueError:
        return None
    keys = [(kind, b) for kind in ("reference", "baseline") for b in ("short", "long")]
    if not isinstance(body, dict) or set(body) != {f"{k}/{b}" for k, b in keys}:
        return None
    known = {(k, b): body[f"{k}/{b}"] for k, b in keys}
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in known.values()):
        return None
    if not all(known["baseline", b] > known["reference", b] for b in ("short", "long")):
        return None
    return known


def _reference_main() -> None:
    """The course's recipe's and the baseline's mean losses under the hidden parameters, as a
    :func:`known_line` (the grading sandbox runs this once per grading process for a private file)."""
    import torch
    torch.set_num_threads(1)
    hidden = load_hidden()
    sys.stdout.write(known_line(reference_losses(hidden, *_texts(hidden))) + "\n")
    sys.stdout.flush()


def _main() -> None:
    """The scoring interpreter, which runs no code of the learner's. On stdin it reads a
    :func:`known_line` (from whoever started it), then, after printing the budgets
    (:data:`BUDGETS_MARKER`) for the planner, the plans the planner printed
    (:data:`PLAN_MARKER`, one line); it prints one result line."""
    import torch
    # One thread: the models are small, and a core shared with other kernels (a class
    # graded in parallel, a test suite) slows a multi-threaded run four-fold or more.
    torch.set_num_threads(1)
    hidden = load_hidden()
    known = read_known(sys.stdin.buffer.readline(1 << 16).decode("utf-8", "replace"))
    sys.stdout.write(BUDGETS_MARKER + json.dumps(budgets_of(hidden)) + "\n")
    sys.stdout.flush()
    texts = _texts(hidden)
    known = known or reference_losses(hidden, *texts)  # while the planner runs (stored for the defaults)
    line = sys.stdin.buffer.readline(MAX_PLAN_BYTES).decode("utf-8", "replace")
    try:
        raw = json.loads(line[len(PLAN_MARKER):]) if line.startswith(PLAN_MARKER) else {}
    except (ValueError, RecursionError):  # not JSON, or nested too deep
        raw = {}
    raw = raw if isinstance(raw, dict) else {}
    gaps: dict = {}
    result = score({b: raw.get(str(b)) for b in budgets_of(hidden)}, hidden, gaps, texts=texts, known=known)
    sys.stdout.write(MARKER + json.dumps({**result, "gaps": gaps}) + "\n")
    sys.stdout.flush()


def _plan_main() -> None:
    """The planning interpreter, which runs the learner's recipe and sees no hidden parameter
    but the budgets: a line of budgets (JSON) then the pickled recipe on stdin, one line of
    plans (:data:`PLAN_MARKER`, ``{budget: plan or null}``) on stdout."""
    import pickle

    import torch
    torch.set_num_threads(1)
    budgets = json.loads(sys.stdin.buffer.readline().decode("utf-8"))
    recipe = pickle.loads(sys.stdin.buffer.read())
    found = plans(recipe, [int(b) for b in budgets])
    sys.stdout.write(PLAN_MARKER + json.dumps({str(b): p for b, p in found.items()}) + "\n")
    sys.stdout.flush()


def describe(hidden: Hidden | None = None) -> dict:
    """The hidden parameters as a plain dict (for the instructor's own checks)."""
    return asdict(hidden or load_hidden())
