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


_PLAN = '''def plan_branches(budgets, min_cooldown_frac, warmup_steps, every=1):
    """{{budget: (branch_step, cooldown_steps)}}: branches from checkpoints saved every `every` steps."""
    {check_frac}
    {check_every}
    plan = {{}}
    for budget in sorted(set(budgets)):
        shortest = {shortest}
        branch = {branch}
        {check_warmup}
        plan[budget] = (branch, {cooldown})
    if not plan:
        raise ValueError("budgets must not be empty")
    return plan
'''
_CHECK_FRAC = '''if not 0 < min_cooldown_frac <= 1:
        raise ValueError(f"min_cooldown_frac must be in (0, 1], got {min_cooldown_frac}")'''
_CHECK_EVERY = '''if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a whole number >= 1, got {every!r}")'''
_CHECK_WARMUP = '''if branch < warmup_steps:
            raise ValueError(f"budget {budget}: no checkpoint after the warmup")'''


def _plan(check_frac=_CHECK_FRAC, check_every=_CHECK_EVERY, shortest="max(1, round(min_cooldown_frac * budget))",
          branch="(budget - shortest) // every * every", check_warmup=_CHECK_WARMUP, cooldown="budget - branch"):
    return _PLAN.format(check_frac=check_frac, check_every=check_every, shortest=shortest, branch=branch,
                        check_warmup=check_warmup, cooldown=cooldown)


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
        "ignores the checkpoint grid (branches at budget - cooldown)": _plan(branch="budget - shortest"),
        "nearest checkpoint instead of the latest early enough": _plan(
            branch="round((budget - shortest) / every) * every"),
        "next checkpoint after budget - cooldown (cooldown too short)": _plan(
            branch="-(-(budget - shortest) // every) * every"),
        "cooldown of the minimum length, not to the budget": _plan(cooldown="shortest"),
        "earliest checkpoint after the warmup": _plan(branch="-(-warmup_steps // every) * every"),
        "minimum cooldown rounded down (int)": _plan(shortest="max(1, int(min_cooldown_frac * budget))"),
        "no minimum of one cooldown step": _plan(shortest="round(min_cooldown_frac * budget)"),
        "branches may start inside the warmup": _plan(check_warmup="pass"),
        "min_cooldown_frac not checked": _plan(check_frac="pass"),
        "every not checked": _plan(check_every="pass"),
    },
}
