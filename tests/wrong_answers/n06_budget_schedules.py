"""Plausible wrong answers to the exercises of notebook 06; each must lose points."""

_WSD = '''def wsd(step, peak_lr, warmup_steps, total_steps, cooldown_steps, shape="linear"):
    """Learning rate of warmup-stable-decay after `step` scheduler steps (0 from total_steps on)."""
    if shape not in ("linear", "cosine", "1-sqrt"):
        raise ValueError(f"unknown shape {{shape!r}}")
    decay_start = {decay_start}
    if decay_start < warmup_steps:
        raise ValueError("the cooldown would start inside the warmup")
    if step < warmup_steps:
        return {warmup}
    if step < decay_start:
        return float(peak_lr)
    if step >= total_steps:
        return 0.0
    p = (step - decay_start) / cooldown_steps
    if shape == "linear":
        return peak_lr * (1 - p)
    if shape == "cosine":
        return {cosine}
    return {sqrt}
'''


def _wsd(decay_start="total_steps - cooldown_steps", warmup="peak_lr * step / warmup_steps",
         cosine="peak_lr * (1 + math.cos(math.pi * p)) / 2", sqrt="peak_lr * (1 - math.sqrt(p))"):
    return _WSD.format(decay_start=decay_start, warmup=warmup, cosine=cosine, sqrt=sqrt)


_PLAN = '''def plan_branches(budgets, cooldown_frac, warmup_steps):
    """{{budget: (branch_step, cooldown_steps)}} of a branched WSD sweep, one entry per distinct budget."""
    {check_frac}
    plan = {{}}
    for budget in sorted(set(budgets)):
        cooldown = {cooldown}
        branch = {branch}
        {check_warmup}
        plan[budget] = (branch, cooldown)
    if not plan:
        raise ValueError("budgets must not be empty")
    return plan
'''
_CHECK_FRAC = '''if not 0 < cooldown_frac <= 1:
        raise ValueError(f"cooldown_frac must be in (0, 1], got {cooldown_frac}")'''
_CHECK_WARMUP = '''if branch < warmup_steps:
            raise ValueError(f"budget {budget}: the cooldown would start inside the warmup")'''


def _plan(check_frac=_CHECK_FRAC, cooldown="max(1, round(cooldown_frac * budget))", branch="budget - cooldown",
          check_warmup=_CHECK_WARMUP):
    return _PLAN.format(check_frac=check_frac, cooldown=cooldown, branch=branch, check_warmup=check_warmup)


WRONG = {
    "exA-wsd": {
        "cooldown starts one step late": _wsd(decay_start="total_steps - cooldown_steps + 1"),
        "warmup one step ahead ((step + 1) / warmup)": _wsd(warmup="peak_lr * (step + 1) / warmup_steps"),
        "1-sqrt written as sqrt(1 - p)": _wsd(sqrt="peak_lr * math.sqrt(1 - p)"),
        "cosine as a quarter period": _wsd(cosine="peak_lr * math.cos(math.pi * p / 2)"),
        "no validation of the shape (anything else is 1-sqrt)": _wsd().replace(
            '    if shape not in ("linear", "cosine", "1-sqrt"):\n        raise ValueError(f"unknown shape {shape!r}")\n',
            ""),
        "no check that the cooldown starts after the warmup": _wsd().replace(
            '    if decay_start < warmup_steps:\n        raise ValueError("the cooldown would start inside the warmup")\n',
            ""),
        "uses the library": '''def wsd(step, peak_lr, warmup_steps, total_steps, cooldown_steps, shape="linear"):
    from helpers.schedules import wsd_lr
    if cooldown_steps > total_steps - warmup_steps:
        raise ValueError("cooldown too long")
    return wsd_lr(step, peak_lr, warmup_steps, total_steps - warmup_steps - cooldown_steps, cooldown_steps,
                  decay_type=shape)
''',
    },
    "exB-plan": {
        "cooldown rounded down (int)": _plan(cooldown="max(1, int(cooldown_frac * budget))"),
        "no minimum of one cooldown step": _plan(cooldown="round(cooldown_frac * budget)"),
        "branch counted after the warmup": _plan(branch="budget - cooldown - warmup_steps",
                                                 check_warmup="if branch < 0:\n            raise ValueError('too short')"),
        "cooldown of the longest budget for every budget": _plan(
            cooldown="max(1, round(cooldown_frac * max(budgets)))",
            check_warmup="if branch < warmup_steps:\n            raise ValueError('too short')"),
        "branches may start inside the warmup": _plan(check_warmup="pass"),
        "cooldown_frac not checked": _plan(check_frac="pass"),
    },
}
