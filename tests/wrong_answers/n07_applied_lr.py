"""Plausible wrong answers to the exercises of notebook 07; each must lose points."""
WRONG = {
    "exA-name-the-bug": {
        "maps the audit's own diagnosis to the keys": '''
def name_the_bug(applied, planned):
    import numpy as np
    from helpers.audit_diagnosis import first_mismatch
    found = first_mismatch(np.asarray(applied, float), np.asarray(planned, float), 1e-9)
    if found is None:
        return "ok"
    return {"ahead": "scheduler first", "constant": "never stepped", "stepped too often": "per micro-batch",
            "restarted": "restarted"}.get(found.reason, "skipped steps")
''',
        "tests the shift before the length (a step skipped at step 0 looks like 'scheduler first')": '''
def name_the_bug(applied, planned):
    applied, planned = [float(a) for a in applied], [float(p) for p in planned]

    def follows(offset, stride):
        pairs = [(a, planned[stride * i + offset]) for i, a in enumerate(applied)
                 if stride * i + offset < len(planned)]
        return len(pairs) >= 3 and all(math.isclose(a, p, rel_tol=1e-9, abs_tol=1e-15) for a, p in pairs)

    if follows(0, 1) and len(applied) == len(planned):
        return "ok"
    if all(math.isclose(a, applied[0], rel_tol=1e-9) for a in applied):
        return "never stepped"
    if follows(1, 1):
        return "scheduler first"
    if any(follows(k - 1, k) for k in range(2, len(planned))):
        return "per micro-batch"
    if len(applied) < len(planned):
        return "skipped steps"
    return "restarted"
''',
        "assumes 4 micro-batches per step, as in the notebook": '''
def name_the_bug(applied, planned):
    applied, planned = list(applied), list(planned)
    close = lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)  # noqa: E731
    if len(applied) < len(planned):
        return "skipped steps"
    if all(close(a, p) for a, p in zip(applied, planned)):
        return "ok"
    if all(close(a, applied[0]) for a in applied):
        return "never stepped"
    if all(close(a, p) for a, p in zip(applied, planned[1:])):
        return "scheduler first"
    if all(close(applied[i], planned[4 * i + 3]) for i in range(len(applied)) if 4 * i + 3 < len(planned)):
        return "per micro-batch"
    return "restarted"
''',
        "reads only the first step to tell 'scheduler first' from the others": '''
def name_the_bug(applied, planned):
    applied, planned = list(applied), list(planned)
    close = lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)  # noqa: E731
    if len(applied) < len(planned):
        return "skipped steps"
    if all(close(a, p) for a, p in zip(applied, planned)):
        return "ok"
    if all(close(a, applied[0]) for a in applied):
        return "never stepped"
    if close(applied[0], planned[1]):
        return "scheduler first"
    if not close(applied[0], planned[0]):
        return "per micro-batch"
    return "restarted"
''',
    },
    "exB-accumulate": {
        "scheduler built for the number of micro-batches": '''
def train_accumulated(model, optimizer, make_scheduler, micro_batches, accumulation):
    if not isinstance(accumulation, int) or accumulation < 1 or len(micro_batches) % accumulation:
        raise ValueError("bad accumulation")
    scheduler = make_scheduler(optimizer, len(micro_batches))
    optimizer.zero_grad()
    for i, (x, y) in enumerate(micro_batches):
        (F.cross_entropy(model(x), y) / accumulation).backward()
        if (i + 1) % accumulation == 0:
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    return scheduler
''',
        "scheduler stepped once per micro-batch": '''
def train_accumulated(model, optimizer, make_scheduler, micro_batches, accumulation):
    if not isinstance(accumulation, int) or accumulation < 1 or len(micro_batches) % accumulation:
        raise ValueError("bad accumulation")
    scheduler = make_scheduler(optimizer, len(micro_batches) // accumulation)
    optimizer.zero_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (x, y) in enumerate(micro_batches):
            (F.cross_entropy(model(x), y) / accumulation).backward()
            if (i + 1) % accumulation == 0:
                optimizer.step()
                optimizer.zero_grad()
            scheduler.step()
    return scheduler
''',
        "loss not divided by the accumulation": '''
def train_accumulated(model, optimizer, make_scheduler, micro_batches, accumulation):
    if not isinstance(accumulation, int) or accumulation < 1 or len(micro_batches) % accumulation:
        raise ValueError("bad accumulation")
    scheduler = make_scheduler(optimizer, len(micro_batches) // accumulation)
    optimizer.zero_grad()
    for i, (x, y) in enumerate(micro_batches):
        F.cross_entropy(model(x), y).backward()
        if (i + 1) % accumulation == 0:
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    return scheduler
''',
        "gradients cleared after every micro-batch": '''
def train_accumulated(model, optimizer, make_scheduler, micro_batches, accumulation):
    if not isinstance(accumulation, int) or accumulation < 1 or len(micro_batches) % accumulation:
        raise ValueError("bad accumulation")
    scheduler = make_scheduler(optimizer, len(micro_batches) // accumulation)
    for i, (x, y) in enumerate(micro_batches):
        optimizer.zero_grad()
        (F.cross_entropy(model(x), y) / accumulation).backward()
        if (i + 1) % accumulation == 0:
            optimizer.step()
            scheduler.step()
    return scheduler
''',
        "no check of the arguments (a last incomplete group is dropped silently)": '''
def train_accumulated(model, optimizer, make_scheduler, micro_batches, accumulation):
    scheduler = make_scheduler(optimizer, max(1, len(micro_batches) // max(1, accumulation)))
    optimizer.zero_grad()
    for i, (x, y) in enumerate(micro_batches):
        (F.cross_entropy(model(x), y) / max(1, accumulation)).backward()
        if (i + 1) % max(1, accumulation) == 0:
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    return scheduler
''',
    },
    "exC-resume": {
        "checkpoint keeps references to the live state, not a snapshot": '''
def checkpoint(model, optimizer, scheduler, scaler, step):
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "step": step}


def resume(saved, model, optimizer, scheduler, scaler):
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    scaler.load_state_dict(saved["scaler"])
    return saved["step"]
''',
        "scheduler state not saved": '''
def checkpoint(model, optimizer, scheduler, scaler, step):
    return copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scaler": scaler.state_dict(), "step": step})


def resume(saved, model, optimizer, scheduler, scaler):
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scaler.load_state_dict(saved["scaler"])
    return saved["step"]
''',
        "scaler state forgotten": '''
def checkpoint(model, optimizer, scheduler, scaler, step):
    return copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "step": step})


def resume(saved, model, optimizer, scheduler, scaler):
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    return saved["step"]
''',
        "resumes one iteration late": '''
def checkpoint(model, optimizer, scheduler, scaler, step):
    return copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "step": step})


def resume(saved, model, optimizer, scheduler, scaler):
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    scaler.load_state_dict(saved["scaler"])
    return saved["step"] + 1
''',
        "the scheduler object itself in the checkpoint (not loadable with torch.load)": '''
def checkpoint(model, optimizer, scheduler, scaler, step):
    return {"model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict()),
            "scheduler": copy.deepcopy(scheduler), "scaler": scaler.state_dict(), "step": step}


def resume(saved, model, optimizer, scheduler, scaler):
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"].state_dict())
    scaler.load_state_dict(saved["scaler"])
    return saved["step"]
''',
    },
    'exD-diagnosis': {
        'only what the audit shows (the loss that is summed, not averaged, leaves the LRs alone)': '''
COLLEAGUE_BUGS = {"steps when skipped", "scheduler not resumed"}
''',
        'blames the accumulation for the shifted schedule': '''
COLLEAGUE_BUGS = {"per micro-batch", "scheduler not resumed", "loss not averaged"}
''',
        'every bug the menu offers': '''
COLLEAGUE_BUGS = set(COLLEAGUE_MENU)
''',
    },
    'exD-fix': {
        'fixes the resume and the averaging, still steps the scheduler on skipped iterations': '''
def fixed_run(steps=STEPS, accumulation=4, overflow_at=(5,), interrupt_at=20, seed=SEED):
    run, lrs = new_amp_run(seed), []
    for start, stop in ((0, interrupt_at), (interrupt_at, steps)):
        if start:
            run = new_amp_run(seed)
            resume(saved, *run)
        model, optimizer, scheduler, scaler = run
        with LRAudit(optimizer) as audit:
            for step in range(start, stop):
                for x, y in zip(*(t.chunk(accumulation) for t in batch(step, seed=seed))):
                    scaler.scale(F.cross_entropy(model(x), y) / accumulation).backward()
                if step in overflow_at:
                    next(model.parameters()).grad.view(-1)[0] = math.inf
                scale = scaler.get_scale()
                scaler.step(optimizer)
                scaler.update()
                if True:
                    scheduler.step()
                optimizer.zero_grad()
        lrs += audit.lrs()
        saved = checkpoint(*run, stop)
    return lrs, run[0]
''',
        "fixes the schedule, still sums the micro-batches' losses": '''
def fixed_run(steps=STEPS, accumulation=4, overflow_at=(5,), interrupt_at=20, seed=SEED):
    run, lrs = new_amp_run(seed), []
    for start, stop in ((0, interrupt_at), (interrupt_at, steps)):
        if start:
            run = new_amp_run(seed)
            resume(saved, *run)
        model, optimizer, scheduler, scaler = run
        with LRAudit(optimizer) as audit:
            for step in range(start, stop):
                for x, y in zip(*(t.chunk(accumulation) for t in batch(step, seed=seed))):
                    scaler.scale(F.cross_entropy(model(x), y)).backward()
                if step in overflow_at:
                    next(model.parameters()).grad.view(-1)[0] = math.inf
                scale = scaler.get_scale()
                scaler.step(optimizer)
                scaler.update()
                if scaler.get_scale() >= scale:
                    scheduler.step()
                optimizer.zero_grad()
        lrs += audit.lrs()
        saved = checkpoint(*run, stop)
    return lrs, run[0]
''',
        'recognises a skip by a non-finite loss (the overflow is in the gradients)': '''
def fixed_run(steps=STEPS, accumulation=4, overflow_at=(5,), interrupt_at=20, seed=SEED):
    run, lrs = new_amp_run(seed), []
    for start, stop in ((0, interrupt_at), (interrupt_at, steps)):
        if start:
            run = new_amp_run(seed)
            resume(saved, *run)
        model, optimizer, scheduler, scaler = run
        with LRAudit(optimizer) as audit:
            for step in range(start, stop):
                for x, y in zip(*(t.chunk(accumulation) for t in batch(step, seed=seed))):
                    loss = F.cross_entropy(model(x), y)
                    scaler.scale(loss / accumulation).backward()
                if step in overflow_at:
                    next(model.parameters()).grad.view(-1)[0] = math.inf
                scale = scaler.get_scale()
                scaler.step(optimizer)
                scaler.update()
                if torch.isfinite(loss).all():
                    scheduler.step()
                optimizer.zero_grad()
        lrs += audit.lrs()
        saved = checkpoint(*run, stop)
    return lrs, run[0]
''',
        "keeps the colleague's checkpoint (no scheduler state)": '''
def fixed_run(steps=STEPS, accumulation=4, overflow_at=(5,), interrupt_at=20, seed=SEED):
    run, lrs = new_amp_run(seed), []
    for start, stop in ((0, interrupt_at), (interrupt_at, steps)):
        if start:
            run = new_amp_run(seed)
            run[0].load_state_dict(saved["model"])
            run[1].load_state_dict(saved["optimizer"])
            run[3].load_state_dict(saved["scaler"])
        model, optimizer, scheduler, scaler = run
        with LRAudit(optimizer) as audit:
            for step in range(start, stop):
                for x, y in zip(*(t.chunk(accumulation) for t in batch(step, seed=seed))):
                    scaler.scale(F.cross_entropy(model(x), y) / accumulation).backward()
                if step in overflow_at:
                    next(model.parameters()).grad.view(-1)[0] = math.inf
                scale = scaler.get_scale()
                scaler.step(optimizer)
                scaler.update()
                if scaler.get_scale() >= scale:
                    scheduler.step()
                optimizer.zero_grad()
        lrs += audit.lrs()
        saved = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "step": stop})
    return lrs, run[0]
''',
    },
}
