"""Plausible wrong answers to the exercises of notebook 09; each must lose points."""

_BEST = '''def best_setting(sweep):
    # (best_lr, edge) of {{lr: [score per seed]}}: lowest mean score; edge "low", "high" or None.
    {check_size}
    means = {{}}
    for lr, scores in sweep.items():
        scores = [float(s) for s in scores]
        if not scores:
            raise ValueError(f"learning rate {{lr}} has no score")
        {mean}
    best_lr = min(means, key=lambda lr: {key})
    if not math.isfinite(means[best_lr]):
        raise ValueError("every learning rate of the sweep has a diverged run")
    lrs = {order}
    edge = "low" if best_lr == lrs[0] else "high" if best_lr == lrs[-1] else None
    return best_lr, edge
'''
_CHECK_SIZE = '''if len(sweep) < 3:
        raise ValueError(f"a sweep needs at least 3 learning rates, got {len(sweep)}")'''
_MEAN = ("means[float(lr)] = math.inf if any(not math.isfinite(s) for s in scores) "
         "else sum(scores) / len(scores)")


def _best(check_size=_CHECK_SIZE, mean=_MEAN, key="(means[lr], lr)", order="sorted(means)"):
    return _BEST.format(check_size=check_size, mean=mean, key=key, order=order)


_DIAGNOSE = '''def diagnose(sweeps, compared_at=None):
    # The set of STUDY_FLAWS keys that apply to the study.
    flaws, best = set(), {{name: best_setting(sweep) for name, sweep in sweeps.items()}}
    if {shared}:
        flaws.add("shared learning rate")
    if {edge}:
        flaws.add("edge of the grid")
    at_best = {{name: [float(s) for s in sweeps[name][lr]] for name, (lr, _) in best.items()}}
    if len(at_best) >= 2:
        ranked = sorted(at_best, key=lambda name: {rank})
        {pair}
        a, b = at_best[first], at_best[second]
        if {noisy}:
            flaws.add("within seed noise")
    return flaws
'''


def _diagnose(shared="compared_at is not None and any(lr != compared_at for lr, _ in best.values())",
              pair="first, second = ranked[:2]", noisy="len(a) < 2 or len(b) < 2 or max(a) >= min(b)",
              edge="any(edge is not None for _, edge in best.values())",
              rank="sum(at_best[name]) / len(at_best[name])"):
    return _DIAGNOSE.format(shared=shared, pair=pair, noisy=noisy, edge=edge, rank=rank)


_PREDICT = '''def predict_best_lr(base_lr, base_width, width, parametrization):
    # Your predicted best Adam learning rate at `width`, given the best `base_lr` at `base_width`.
    {check}
    if parametrization == "mup":
        return float({mup})
    return float({sp})
'''
_CHECK = '''if parametrization not in ("sp", "mup"):
        raise ValueError(f"parametrization must be 'sp' or 'mup', got {parametrization!r}")
    if not (base_lr > 0 and base_width > 0 and width > 0):
        raise ValueError("base_lr, base_width and width must be positive")'''


def _predict(check=_CHECK, mup="base_lr", sp="base_lr * base_width / width"):
    return _PREDICT.format(check=check, mup=mup, sp=sp)


WRONG = {
    "exA-best": {
        "the lowest single seed instead of the mean": _best(mean="means[float(lr)] = min(scores)"),
        "diverged runs dropped instead of counted (a NaN-mean)": _best(
            mean="finite = [s for s in scores if math.isfinite(s)]\n"
                 "        means[float(lr)] = sum(finite) / len(finite) if finite else math.inf"),
        "edges read from the order of the keys": _best(order="list(means)"),
        "a tie goes to the larger learning rate": _best(key="(means[lr], -lr)"),
        "no error for a sweep of two learning rates": _best(check_size="pass"),
        "edges looked for among the learning rates that did not diverge": _best(
            order="sorted(lr for lr in means if math.isfinite(means[lr]))"),
    },
    "exB-diagnose": {
        "a shared learning rate is always a flaw": _diagnose(shared="compared_at is not None"),
        "noise between the best and the worst option, not the two best": _diagnose(
            pair="first, second = ranked[0], ranked[-1]"),
        "ranges that touch do not overlap": _diagnose(noisy="len(a) < 2 or len(b) < 2 or max(a) > min(b)"),
        "a single seed is not flagged": _diagnose(noisy="max(a) >= min(b)"),
        "shared only when compared_at is nobody's best (all instead of any)": _diagnose(
            shared="compared_at is not None and all(lr != compared_at for lr, _ in best.values())"),
        "no edge check when the study compared at a shared learning rate": _diagnose(
            edge="compared_at is None and any(edge is not None for _, edge in best.values())"),
        "the two best ranked by their best single seed, not their mean": _diagnose(rank="min(at_best[name])"),
    },
    "exC-predict": {
        "SP keeps the base learning rate": _predict(sp="base_lr"),
        "μP divided by the width multiplier again": _predict(mup="base_lr * base_width / width"),
        "SP grows with the width": _predict(sp="base_lr * width / base_width"),
        "no ValueError for an unknown parametrisation": _predict(
            check="if not (base_lr > 0 and base_width > 0 and width > 0):\n"
                  "        raise ValueError(\"base_lr, base_width and width must be positive\")"),
    },
}
