"""Plausible wrong answers to the exercises of notebook 05; each must lose points."""

_TRIANGULAR = '''def triangular_lr(step, base_lr, max_lr, step_size_up, mode="triangular"):
    """Learning rate of Smith's triangular / triangular2 policy after `step` scheduler steps."""
    if mode not in ("triangular", "triangular2"):
        raise ValueError(f"unknown mode {{mode!r}}")
    cycle = {cycle}
    x = {x}
    scale = 1.0 if mode == "triangular" else {scale}
    return base_lr + (max_lr - base_lr) * max(0.0, 1 - x) * scale
'''
_CYCLE = "math.floor(1 + step / (2 * step_size_up))"
_X = "abs(step / step_size_up - 2 * cycle + 1)"
_SCALE = "1 / 2 ** (cycle - 1)"

_ONE_CYCLE = '''def make_one_cycle(optimizer, max_lr, epochs, loader=None, steps_per_epoch=None):
    """A OneCycleLR for `epochs` epochs of len(loader) (or steps_per_epoch) batches."""
    {check}
    per_epoch = len(loader) if loader is not None else steps_per_epoch
    return OneCycleLR(optimizer, max_lr=max_lr, total_steps={total}, pct_start={pct},
                      div_factor=10.0, final_div_factor={final})
'''
_CHECK = '''if (loader is None) == (steps_per_epoch is None):
        raise ValueError("give exactly one of loader and steps_per_epoch")'''


def _one_cycle(check=_CHECK, total="epochs * per_epoch", pct="0.25", final="100.0"):
    return _ONE_CYCLE.format(check=check, total=total, pct=pct, final=final)


_DIAGNOSE = '''def diagnose(lrs, momenta, epochs, steps_per_epoch):
    """Which of BUGS made this trace of a OneCycleLR training loop ("ok" if none)."""
    lrs, momenta = list(lrs), list(momenta)
    checks = [
        ("ran out", lambda: len(lrs) {short} epochs * steps_per_epoch),
        ("stepped per epoch", lambda: all(lrs[i] == lrs[i - 1] for i in range(1, len(lrs)) if i % steps_per_epoch)),
        ("too long", lambda: {too_long}),
        ("momentum not cycled", lambda: {fixed}),
        ("momentum in phase", lambda: momenta[lrs.index(max(lrs))] {in_phase} momenta[0]),
    ]
    order = {order}
    for k in order:
        if checks[k][1]():
            return checks[k][0]
    return "ok"
'''


def _diagnose(short="<", too_long="lrs[-1] > lrs[0] / 100", fixed="max(momenta) == min(momenta)",
              in_phase=">", order=(0, 1, 2, 3, 4)):
    return _DIAGNOSE.format(short=short, too_long=too_long, fixed=fixed, in_phase=in_phase, order=list(order))


WRONG = {
    "exA-triangular": {
        "triangular2 halves the height one cycle too early (1/2**cycle)":
            _TRIANGULAR.format(cycle=_CYCLE, x=_X, scale="1 / 2 ** cycle"),
        "triangular2 halves at every half-cycle (per step_size_up steps) instead of per cycle":
            _TRIANGULAR.format(cycle=_CYCLE, x=_X, scale="1 / 2 ** math.floor(step / step_size_up)"),
        "the cycle index is off by one (0-based: floor(t / 2s))":
            _TRIANGULAR.format(cycle="math.floor(step / (2 * step_size_up))", x=_X, scale=_SCALE),
        "a whole cycle lasts step_size_up steps instead of 2 * step_size_up":
            _TRIANGULAR.format(cycle="math.floor(1 + step / step_size_up)",
                               x="abs(2 * step / step_size_up - 2 * cycle + 1)", scale=_SCALE),
        "any other mode is silently treated as triangular":
            _TRIANGULAR.format(cycle=_CYCLE, x=_X, scale=_SCALE).replace(
                'raise ValueError(f"unknown mode {mode!r}")', 'mode = "triangular"'),
    },
    "exB-one-cycle": {
        "final_div_factor=1000: ends at max_lr / 10 / 1000 instead of max_lr / 1000":
            _one_cycle(final="1000.0"),
        "pct_start left at PyTorch's default 0.3": _one_cycle(pct="0.3"),
        "one step too many (total_steps = epochs * per_epoch + 1)": _one_cycle(total="epochs * per_epoch + 1"),
        "no check that exactly one of loader and steps_per_epoch is given": _one_cycle(check="pass"),
        "epochs ignored (one epoch's steps)": _one_cycle(total="per_epoch"),
    },
    "exC-diagnose": {
        "'too long' checked before 'stepped per epoch' (a per-epoch trace also ends high)":
            _diagnose(order=(0, 2, 1, 3, 4)),
        "momentum test reversed: 'in phase' when it is lowest at the peak": _diagnose(in_phase="<"),
        "'too long' only when the LR ends above where it started": _diagnose(too_long="lrs[-1] > lrs[0]"),
        "'momentum not cycled' when the first and the last momentum agree":
            _diagnose(fixed="momenta[0] == momenta[-1]"),
        "'ran out' with <=: a complete trace counts as a crash": _diagnose(short="<="),
        "momentum checks before the LR checks (a per-epoch trace barely moves the momentum)":
            _diagnose(order=(0, 3, 4, 1, 2), fixed="max(momenta) - min(momenta) < 0.01"),
    },
}
