"""Plausible wrong answers to the exercises of notebook 03; each must lose points."""

_COSINE = '''

def cosine_annealing(step, base_lr, T_max, eta_min=0.0):
    """LR of CosineAnnealingLR after `step` scheduler steps (also past T_max)."""
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * step / T_max)) / 2
'''
_STEP = '''import math


def step_decay(step, base_lr, step_size, gamma=0.1):
    """LR of StepLR after `step` scheduler steps."""
    return base_lr * gamma ** (step // step_size)
'''
_RESTARTS = '''

def cosine_warm_restarts(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    """LR of CosineAnnealingWarmRestarts after `step` scheduler steps."""
    t_cur, t_i = step, T_0
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= T_mult
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2
'''

_TRAIN_HEAD = '''import torch.nn.functional as F


def train(model, optimizer, scheduler, loader, epochs, step_per):
    """Train; return the learning rate used by every optimizer step."""
'''

_DIAGNOSE_HEAD = '''DIAGNOSES = ("correct", "per batch instead of per epoch", "per epoch instead of per batch",
             "scheduler.step() before optimizer.step()", "unknown")


def diagnose(used, schedule, steps_per_epoch, step_per):
    """Which wiring of scheduler.step() explains the LRs `used` (one of DIAGNOSES)?"""
'''


def _diagnose(calls, *, compare="math.isclose(lr, schedule(s(k)), rel_tol=1e-9, abs_tol=1e-12)",
              fallback='"unknown"', check_unit=True, used="used"):
    """A diagnose() whose hypotheses map step k to `calls` (a dict literal of lambdas)."""
    guard = ('''    if step_per not in ("batch", "epoch"):
        raise ValueError(step_per)
''' if check_unit else "")
    return _DIAGNOSE_HEAD + guard + f'''    other = "epoch" if step_per == "batch" else "batch"
    n = steps_per_epoch
    hypotheses = {calls}
    for name in DIAGNOSES[:-1]:
        s = hypotheses.get(name)
        if s is not None and all({compare} for k, lr in enumerate({used})):
            return name
    return {fallback}
'''


_RIGHT = '''{"correct": lambda k: k if step_per == "batch" else k // n,
                  f"per {other} instead of per {step_per}": lambda k: k if other == "batch" else k // n,
                  "scheduler.step() before optimizer.step()": lambda k: (k if step_per == "batch" else k // n) + 1}'''

WRONG = {
    "exA-closed-forms": {
        "StepLR with true division (/ instead of //)": _STEP.replace("step // step_size", "step / step_size")
        + _COSINE + _RESTARTS,
        "StepLR drops one step early ((step + 1) // step_size)": _STEP.replace("step // step_size",
                                                                                "(step + 1) // step_size")
        + _COSINE + _RESTARTS,
        "cosine over T_max + 1 steps": _STEP + _COSINE.replace("step / T_max", "step / (T_max + 1)") + _RESTARTS,
        "cosine held at eta_min after T_max": _STEP + _COSINE.replace("step / T_max", "min(step, T_max) / T_max")
        + _RESTARTS,
        "warm restarts ignore T_mult (step % T_0)": _STEP + _COSINE + '''

def cosine_warm_restarts(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    """LR of CosineAnnealingWarmRestarts after `step` scheduler steps."""
    t_cur = step % T_0
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / T_0)) / 2
''',
        "warm restarts: cycle found with math.log (rounds log_3 27 down)": _STEP + _COSINE + '''

def cosine_warm_restarts(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    """LR of CosineAnnealingWarmRestarts after `step` scheduler steps."""
    if T_mult == 1:
        i = step // T_0
        start, t_i = i * T_0, T_0
    else:
        i = int(math.log(step / T_0 * (T_mult - 1) + 1, T_mult))
        start, t_i = T_0 * (T_mult ** i - 1) // (T_mult - 1), T_0 * T_mult ** i
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * (step - start) / t_i)) / 2
''',
        "warm restarts: restart one step late (while t_cur > t_i)": _STEP + _COSINE
        + _RESTARTS.replace("while t_cur >= t_i", "while t_cur > t_i"),
    },
    "exC-train-loop": {
        "scheduler.step() before optimizer.step()": _TRAIN_HEAD + '''    if step_per not in ("batch", "epoch"):
        raise ValueError(step_per)
    used = []
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            if step_per == "batch":
                scheduler.step()
            used.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
        if step_per == "epoch":
            scheduler.step()
    return used
''',
        "steps the scheduler per batch whatever step_per says": _TRAIN_HEAD + '''    if step_per not in ("batch", "epoch"):
        raise ValueError(step_per)
    used = []
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            used.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
    return used
''',
        "records the LR after the scheduler step": _TRAIN_HEAD + '''    if step_per not in ("batch", "epoch"):
        raise ValueError(step_per)
    used = []
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            if step_per == "batch":
                scheduler.step()
            used.append(optimizer.param_groups[0]["lr"])
        if step_per == "epoch":
            scheduler.step()
    return used
''',
        "no ValueError: anything but 'batch' means per epoch": _TRAIN_HEAD + '''    used = []
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            used.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if step_per == "batch":
                scheduler.step()
        if step_per != "batch":
            scheduler.step()
    return used
''',
        "never zeroes the gradients and steps per epoch inside the batch loop": _TRAIN_HEAD + '''    if step_per not in ("batch", "epoch"):
        raise ValueError(step_per)
    used = []
    for _ in range(epochs):
        for i, (x, y) in enumerate(loader):
            F.cross_entropy(model(x), y).backward()
            used.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if step_per == "batch" or i == len(loader):
                scheduler.step()
    return used
''',
    },
    "exB-diagnose": {
        "scheduler first read as one step late (s - 1)": _diagnose(_RIGHT.replace(
            "(k if step_per == \"batch\" else k // n) + 1", "max((k if step_per == \"batch\" else k // n) - 1, 0)")),
        "per epoch counted with / instead of //": _diagnose(_RIGHT.replace("k // n", "k / n")),
        "scheduler first shifts the batch index, also per epoch ((k + 1) // n)": _diagnose(_RIGHT.replace(
            "(k if step_per == \"batch\" else k // n) + 1", "k + 1 if step_per == \"batch\" else (k + 1) // n")),
        "exact comparison (==) of floats": _diagnose(_RIGHT, compare="lr == schedule(s(k))"),
        "only checks the first epoch": _diagnose(_RIGHT, used="used[:steps_per_epoch]"),
        "never says unknown (falls back to correct)": _diagnose(_RIGHT, fallback='"correct"'),
        "no ValueError for an unknown unit": _diagnose(_RIGHT, check_unit=False),
        "swaps the two unit mistakes": _diagnose('''{"correct": lambda k: k if step_per == "batch" else k // n,
                  f"per {step_per} instead of per {other}": lambda k: k if other == "batch" else k // n,
                  "scheduler.step() before optimizer.step()": lambda k: (k if step_per == "batch" else k // n) + 1}'''),
    },
}
