"""Plausible wrong answers to the exercises of notebook 02; each must lose points."""

_EX2_HEAD = '''def my_range_test(model, optimizer, criterion, loader, start_lr, end_lr, num_iters,
                  smooth=0.98, diverge_th=4.0):
    """LR range test (exponential sweep); returns lrs, raw losses, smoothed losses."""
    model_state = copy.deepcopy(model.state_dict())
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    was_training = model.training
    model.train()
    lrs, raw_losses, smoothed_losses = [], [], []
    avg, best = 0.0, math.inf
    batches = iter(loader)
    try:
        for i in range(num_iters):
            lr = end_lr if i == num_iters - 1 else start_lr * (end_lr / start_lr) ** (i / (num_iters - 1))
            for group in optimizer.param_groups:
                group["lr"] = lr
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(loader)
                x, y = next(batches)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            value = loss.item()
            if not math.isfinite(value):
                break
            optimizer.step()
'''

_EX2_RECORD = '''            avg = smooth * avg + (1 - smooth) * value
            smoothed = avg / (1 - smooth ** (i + 1))
            lrs.append(lr), raw_losses.append(value), smoothed_losses.append(smoothed)
            if smoothed > diverge_th * best:
                break
            best = min(best, smoothed)
'''

_EX2_RESTORE = '''    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
        model.train(was_training)
    return lrs, raw_losses, smoothed_losses
'''

_EX3_HEAD = '''def suggest_lr(lrs, losses, method, skip_start=10, skip_end=5):
    """Suggest a learning rate from a range-test curve: 'minimum' (/10) or 'steepest'."""
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
'''

WRONG = {
    "ex1-smooth-losses": {
        "no bias correction": '''def smooth_losses(losses, beta):
    """Bias-corrected exponential moving average of `losses`."""
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    out, avg = [], 0.0
    for loss in losses:
        avg = beta * avg + (1 - beta) * loss
        out.append(avg)
    return np.array(out, dtype=float)
''',
        "bias correction with beta ** i (off by one)": '''def smooth_losses(losses, beta):
    """Bias-corrected exponential moving average of `losses`."""
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** max(i, 1)))
    return np.array(out, dtype=float)
''',
        "starts the average at the first loss instead of zero, then corrects": '''def smooth_losses(losses, beta):
    """Bias-corrected exponential moving average of `losses`."""
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    out, avg = [], None
    for i, loss in enumerate(losses):
        avg = loss if avg is None else beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return np.array(out, dtype=float)
''',
        "accepts beta = 1 (checks only beta > 1)": '''def smooth_losses(losses, beta):
    """Bias-corrected exponential moving average of `losses`."""
    if beta < 0 or beta > 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)) if beta < 1 else loss)
    return np.array(out, dtype=float)
''',
    },
    "ex2-range-test": {
        "EMA without bias correction": _EX2_HEAD + '''            avg = smooth * avg + (1 - smooth) * value
            smoothed = avg
            lrs.append(lr), raw_losses.append(value), smoothed_losses.append(smoothed)
            if smoothed > diverge_th * best:
                break
            best = min(best, smoothed)
''' + _EX2_RESTORE,
        "divergence checked against the best raw loss": _EX2_HEAD + '''            avg = smooth * avg + (1 - smooth) * value
            smoothed = avg / (1 - smooth ** (i + 1))
            lrs.append(lr), raw_losses.append(value), smoothed_losses.append(smoothed)
            if smoothed > diverge_th * best:
                break
            best = min(best, value)
''' + _EX2_RESTORE,
        "does not restore the optimizer state": _EX2_HEAD + _EX2_RECORD + '''    finally:
        model.load_state_dict(model_state)
        model.train(was_training)
    return lrs, raw_losses, smoothed_losses
''',
        "does not restore the train/eval mode": _EX2_HEAD + _EX2_RECORD + '''    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
    return lrs, raw_losses, smoothed_losses
''',
        "records the loss after the optimizer step": _EX2_HEAD.replace(
            "            value = loss.item()\n            if not math.isfinite(value):\n                break\n"
            "            optimizer.step()\n",
            "            optimizer.step()\n            value = criterion(model(x), y).item()\n"
            "            if not math.isfinite(value):\n                break\n") + _EX2_RECORD + _EX2_RESTORE,
        "itertools.cycle replays the first pass": _EX2_HEAD.replace(
            "            try:\n                x, y = next(batches)\n            except StopIteration:\n"
            "                batches = iter(loader)\n                x, y = next(batches)\n",
            "            if i == 0:\n                import itertools\n                batches = itertools.cycle(loader)\n"
            "            x, y = next(batches)\n") + _EX2_RECORD + _EX2_RESTORE,
    },
    "ex3-suggest": {
        "steepest against lr instead of log10(lr)": _EX3_HEAD + '''    stop = max(len(lrs) - skip_end, 0)
    lrs, losses = lrs[skip_start:stop], losses[skip_start:stop]
    if len(lrs) < 10:
        raise ValueError(f"only {len(lrs)} points left after skipping, need at least 10 points")
    if method == "minimum":
        return float(lrs[np.argmin(losses)] / 10)
    if method == "steepest":
        return float(lrs[np.argmin(np.gradient(losses, lrs))])
    raise ValueError(f"unknown method {method!r}; use 'minimum' or 'steepest'")
''',
        "minimum without dividing by 10": _EX3_HEAD + '''    stop = max(len(lrs) - skip_end, 0)
    lrs, losses = lrs[skip_start:stop], losses[skip_start:stop]
    if len(lrs) < 10:
        raise ValueError(f"only {len(lrs)} points left after skipping, need at least 10 points")
    if method == "minimum":
        return float(lrs[np.argmin(losses)])
    if method == "steepest":
        return float(lrs[np.argmin(np.gradient(losses, np.log10(lrs)))])
    raise ValueError(f"unknown method {method!r}; use 'minimum' or 'steepest'")
''',
        "slices with [skip_start:-skip_end] (breaks for skip_end = 0)": _EX3_HEAD + '''    lrs, losses = lrs[skip_start:-skip_end], losses[skip_start:-skip_end]
    if len(lrs) < 10:
        raise ValueError(f"only {len(lrs)} points left after skipping, need at least 10 points")
    if method == "minimum":
        return float(lrs[np.argmin(losses)] / 10)
    if method == "steepest":
        return float(lrs[np.argmin(np.gradient(losses, np.log10(lrs)))])
    raise ValueError(f"unknown method {method!r}; use 'minimum' or 'steepest'")
''',
        "steepest by the largest drop between neighbours (np.diff) instead of np.gradient": _EX3_HEAD + '''    stop = max(len(lrs) - skip_end, 0)
    lrs, losses = lrs[skip_start:stop], losses[skip_start:stop]
    if len(lrs) < 10:
        raise ValueError(f"only {len(lrs)} points left after skipping, need at least 10 points")
    if method == "minimum":
        return float(lrs[np.argmin(losses)] / 10)
    if method == "steepest":
        return float(lrs[np.argmin(np.diff(losses) / np.diff(np.log10(lrs)))])
    raise ValueError(f"unknown method {method!r}; use 'minimum' or 'steepest'")
''',
    },
    "ex4-diagnosis": {
        "the two ends of the sweep swapped (start_lr and end_lr confused)":
            '''DIAGNOSIS = {"A": "end_lr too low", "B": "start_lr too high", "C": "no smoothing", "D": "too few iterations"}
''',
        "the sparse curve blamed on unrestored weights":
            '''DIAGNOSIS = {"A": "start_lr too high", "B": "end_lr too low", "C": "no smoothing", "D": "weights not restored"}
''',
        "the jagged curve blamed on the batch size":
            '''DIAGNOSIS = {"A": "start_lr too high", "B": "end_lr too low", "C": "batch size changed", "D": "too few iterations"}
''',
        "the curves diagnosed in the order the pitfalls are listed in the text":
            '''DIAGNOSIS = {"A": "end_lr too low", "B": "no smoothing", "C": "too few iterations", "D": "start_lr too high"}
''',
    },
}
