"""Benchmark ``helpers.lr_finder.lr_range_test`` against torch-lr-finder's ``LRFinder``.

Both run the same range test (exponential sweep from 1e-7 to 10, 100 iterations)
on the same model, initial weights and batches: scikit-learn's ``load_digits``
(standardised, 75 % train split), batches of 32, an MLP 64-128-128-10 and
SGD with momentum 0.9.

* Wall time: best of ``--repeats`` runs after one warm-up each, interleaved.
  Both sweeps run all iterations (divergence stop disabled) so they do the same
  work; ours includes the state snapshot and restore, theirs includes
  ``LRFinder(...)`` (its snapshot), ``range_test`` and ``reset()``. Progress bars
  are off on both sides (torch-lr-finder has no switch, so its ``tqdm`` is
  replaced by a pass-through) and its prints are discarded.
* Peak memory: each library runs once in a fresh subprocess (the data reach it
  through a temporary ``.npz``); on CPU the figure is the increase of peak RSS
  (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) over a baseline taken after
  imports, data loading and five warm-up training steps (the first optimizer
  step imports a lot lazily). ``tracemalloc`` is not used because it cannot see
  torch's allocations. On CUDA it is the increase of
  ``torch.cuda.max_memory_allocated``.
* A correctness check: with smoothing and stopping off, the two raw loss curves
  (same weights, batches and learning rates) must agree exactly.
* Suggestions: each library with its default settings (ours: bias-corrected
  smoothing 0.98, ``diverge_th=4``; theirs: uncorrected smoothing 0.05,
  ``diverge_th=5``). Theirs is the steepest-gradient point of
  ``LRFinder.plot(suggest_lr=True)`` (drawn on an off-screen Agg figure).
* Validation-loss test (``val_loader``: the 25 % held-out split, batches of 32,
  not shuffled): the recorded loss is the validation loss after every step.
  torch-lr-finder evaluates the whole loader each time; ours runs both ways,
  with the whole loader and with ``val_batches=2`` (its first two batches).
  Same timing rules; the raw validation curves of the two whole-loader runs
  must agree exactly. Their peak memory is measured in the same two
  subprocesses, after the training-loss run, with the peak reset in between
  (``/proc/self/clear_refs`` and ``VmHWM`` on Linux, freed heap returned with
  ``malloc_trim`` first; ``reset_peak_memory_stats`` on CUDA), so no extra
  process start is paid.
* Repeated runs (``runs``) and ``param_group`` are not benchmarked:
  torch-lr-finder has no equivalent (it sweeps every parameter group, once).

Usage::

    python benchmarks/bench_lr_finder.py            # full run
    python benchmarks/bench_lr_finder.py --quick    # smoke run: 20 iterations, 1 repeat
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Only what every process needs; the memory subprocesses import the rest lazily so they start fast.
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

START_LR, END_LR, BATCH_SIZE = 1e-7, 10.0, 32
NO_STOP = 1e300  # a divergence threshold that is never reached
VAL_BATCHES = 2  # ours' cheap validation-loss test: the first batches of the validation loader
MODES = {"ours": ("train", "val", "val_k"), "theirs": ("train", "val")}  # memory measured per library


def load_splits(seed: int = 0):
    """``load_digits`` (bundled with scikit-learn, no download): 75 % train / 25 % validation, standardised
    with the training statistics. Returns ``(x_train, y_train, x_val, y_val)``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(x_train)
    return (scaler.transform(x_train).astype(np.float32), y_train.astype(np.int64),
            scaler.transform(x_val).astype(np.float32), y_val.astype(np.int64))


def load_train_split(seed: int = 0):
    """Standardised 75 % training split of ``load_digits``: ``(x_train, y_train)``."""
    return load_splits(seed)[:2]


def _tlf():
    import torch_lr_finder.lr_finder as tlf

    tlf.tqdm = lambda iterable, *a, **k: iterable  # it has no switch for its progress bar
    return tlf


class Bench:
    """Data, model and initial weights shared by every run."""

    def __init__(self, device: str, data=None, seed: int = 0) -> None:
        x_train, y_train, x_val, y_val = load_splits(seed) if data is None else data
        data = TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
        self.loader = DataLoader(data, batch_size=BATCH_SIZE, shuffle=True)
        self.n_train = len(data)
        val = TensorDataset(torch.from_numpy(x_val), torch.from_numpy(y_val))
        # Its own generator: every iter(DataLoader) draws a base seed, from the global RNG by default, and the
        # two libraries create validation iterators at different moments, which would shift the training shuffle.
        self.val_loader = DataLoader(val, batch_size=BATCH_SIZE, shuffle=False,
                                     generator=torch.Generator().manual_seed(seed))
        self.n_val = len(val)
        self.device = torch.device(device)
        torch.manual_seed(seed)
        self.model = nn.Sequential(
            nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
        ).to(self.device)
        self.init = copy.deepcopy(self.model.state_dict())
        self.criterion = nn.CrossEntropyLoss()
        self.seed = seed

    def fresh_optimizer(self) -> torch.optim.Optimizer:
        self.model.load_state_dict(self.init)
        torch.manual_seed(self.seed)  # same shuffling for both libraries
        return torch.optim.SGD(self.model.parameters(), lr=START_LR, momentum=0.9)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def run_ours(bench: Bench, iters: int, **kwargs):
    from helpers.lr_finder import lr_range_test

    opt = bench.fresh_optimizer()
    start = time.perf_counter()
    result = lr_range_test(bench.model, opt, bench.criterion, bench.loader, start_lr=START_LR, end_lr=END_LR,
                           num_iters=iters, progress=False, **kwargs)
    bench.sync()
    return time.perf_counter() - start, result


def run_theirs(bench: Bench, iters: int, val_loader=None, **kwargs):
    tlf = _tlf()
    opt = bench.fresh_optimizer()
    with contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        finder = tlf.LRFinder(bench.model, opt, bench.criterion, device=bench.device)
        finder.range_test(bench.loader, val_loader=val_loader, start_lr=START_LR, end_lr=END_LR, num_iter=iters,
                          step_mode="exp", **kwargs)
        finder.reset()
        bench.sync()
        elapsed = time.perf_counter() - start
    return elapsed, finder


def their_suggestion(finder) -> str:
    """The steepest-gradient LR of ``LRFinder.plot(suggest_lr=True)``, without showing a figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            _, lr = finder.plot(skip_start=10, skip_end=5, ax=ax, suggest_lr=True)
        return f"steepest={lr:.3g}"
    except RuntimeError as err:  # too few points
        return f"steepest unavailable ({err})"
    finally:
        plt.close(fig)


def mode_runner(mode: str):
    """``(runner, kwargs)`` of one benchmarked mode, every one with divergence stopping off.

    ``mode`` is ``"<library>"`` (training-loss test) or ``"<library>_val"`` (validation-loss test on the
    whole validation loader), plus ``"ours_val_k"`` (ours on its first ``VAL_BATCHES`` batches).
    """
    library, _, kind = mode.partition("_")
    runner = run_ours if library == "ours" else run_theirs
    kwargs = {"diverge_th": NO_STOP if library == "ours" else float("inf")}
    if kind:
        kwargs["val_loader"] = None  # filled in with the bench's loader by run_mode
        if kind == "val_k":
            kwargs["val_batches"] = VAL_BATCHES
    return runner, kwargs


def run_mode(bench: Bench, mode: str, iters: int, **extra):
    runner, kwargs = mode_runner(mode)
    if "val_loader" in kwargs:
        kwargs["val_loader"] = bench.val_loader
    return runner(bench, iters, **{**kwargs, **extra})


def _points(out) -> int:
    return len(out.lrs) if hasattr(out, "lrs") else len(out.history["lr"])


def time_modes(bench: Bench, iters: int, repeats: int, modes) -> dict:
    """Best wall time of each mode over ``repeats`` interleaved rounds, after one warm-up round."""
    times = {m: [] for m in modes}
    counts = {}
    for rep in range(repeats + 1):  # the first round is the warm-up
        for mode in modes:
            t, out = run_mode(bench, mode, iters)
            counts[mode] = _points(out)
            if rep:
                times[mode].append(t)
    return {"best": {k: min(v) for k, v in times.items()}, "iters": counts}


def time_both(bench: Bench, iters: int, repeats: int) -> dict:
    return time_modes(bench, iters, repeats, ("ours", "theirs"))


class PeakMemory:
    """Increase of peak memory (KiB) over a baseline taken by ``reset``; resettable within one process.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU on Linux: ``VmHWM`` of ``/proc/self/status`` after
    writing ``5`` to ``/proc/self/clear_refs`` (which resets it to the current RSS), with freed heap memory
    first handed back by ``malloc_trim``. Elsewhere: ``ru_maxrss``, which cannot be reset, so only the first
    measurement of a process is meaningful (later ones are NaN).
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.resettable = self.cuda or self._clear_refs()
        self.base, self.used = 0.0, False

    @staticmethod
    def _clear_refs() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return PeakMemory._hwm() is not None
        except OSError:
            return False

    @staticmethod
    def _hwm():
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return float(line.split()[1])  # kB
        except OSError:
            pass
        return None

    def reset(self) -> None:
        import gc

        gc.collect()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.max_memory_allocated() / 1024
            return
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        if self.resettable:
            self._clear_refs()
            self.base = self._hwm()
        else:
            self.base = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux

    def increase(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 1024 - self.base
        if self.resettable:
            return self._hwm() - self.base
        first, self.used = not self.used, True
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) - self.base if first else float("nan")


def measure_memory(library: str, iters: int, device: str, data_file: str) -> dict:
    """Peak-memory increase (KiB) of one run of each of ``library``'s modes, ``{"train": ..., "val": ...}``.

    Call in a fresh process. The training-loss test runs first, on a baseline taken after warm-up steps;
    the validation-loss modes follow in the same process, the peak reset before each.
    """
    with np.load(data_file) as arrays:
        bench = Bench(device, data=(arrays["x"], arrays["y"], arrays["xv"], arrays["yv"]))
    if library == "ours":
        import helpers.lr_finder  # noqa: F401  (imports are not part of the measurement)
    else:
        _tlf()
    # A few plain training steps first, so lazy imports, thread pools and the allocator's working set
    # are in the baseline and the increase is what the range test itself adds.
    warm = copy.deepcopy(bench.model)
    opt = torch.optim.SGD(warm.parameters(), lr=START_LR, momentum=0.9)
    for (x, y), _ in zip(bench.loader, range(5)):
        opt.zero_grad()
        bench.criterion(warm(x.to(bench.device)), y.to(bench.device)).backward()
        opt.step()
    with torch.no_grad():  # and one evaluation pass, for the validation modes
        for x, y in bench.val_loader:
            bench.criterion(bench.model(x.to(bench.device)), y.to(bench.device))
    del warm, opt
    peak = PeakMemory(bench.device)
    out = {}
    for kind in MODES[library]:
        peak.reset()
        run_mode(bench, library if kind == "train" else f"{library}_{kind}", iters)
        out[kind] = peak.increase()
    return out


def start_memory_subprocesses(iters: int, device: str, threads: int, data_file: str) -> dict:
    return {
        lib: subprocess.Popen(
            [sys.executable, __file__, "--child", lib, "--iters", str(iters), "--device", device,
             "--threads", str(threads), "--data", data_file],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for lib in ("ours", "theirs")
    }


def collect(procs: dict) -> dict:
    out = {}
    for lib, proc in procs.items():
        stdout, stderr = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"memory measurement for {lib} failed:\n{stderr}")
        out[lib] = json.loads(stdout.strip().splitlines()[-1])["kib"]
    return out


def _ratio(a: float, b: float) -> str:
    if not (np.isfinite(a) and np.isfinite(b)):
        return "n/a (not measured)"
    return f"{a / b:.2f}" if b > 0 else "n/a (denominator is 0)"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 iterations, 1 repeat")
    parser.add_argument("--iters", type=int, default=100, help="iterations per range test (default 100)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats, best kept (default 5)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: fastest and steadiest for this small MLP)")
    parser.add_argument("--child", choices=("ours", "theirs"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.iters, args.repeats = 20, 1
    if args.iters < 2 or args.repeats < 1 or args.threads < 1:
        parser.error("--iters must be >= 2, --repeats and --threads >= 1")
    return args


def main(argv=None) -> int:
    """Run the benchmark and print the table; ``argv`` as for the command line (e.g. ``["--quick"]``)."""
    args = parse_args(argv)
    if args.child:
        torch.set_num_threads(args.threads)
        print(json.dumps({"kib": measure_memory(args.child, args.iters, args.device, args.data)}))
        return 0
    import torch_lr_finder.lr_finder as tlf

    threads, bar = torch.get_num_threads(), tlf.tqdm
    torch.set_num_threads(args.threads)
    try:
        report(args)
    finally:  # leave the importing process as it was
        torch.set_num_threads(threads)
        tlf.tqdm = bar
    return 0


def report(args) -> None:
    data = load_splits()
    with tempfile.TemporaryDirectory() as tmp:
        data_file = os.path.join(tmp, "digits.npz")
        np.savez(data_file, x=data[0], y=data[1], xv=data[2], yv=data[3])
        procs = start_memory_subprocesses(args.iters, args.device, args.threads, data_file)
        try:
            if not args.quick:  # full run: nothing else competes for the CPU while timing
                memory = collect(procs)
            bench = Bench(args.device, data=data)
            timing = time_both(bench, args.iters, args.repeats)
            val_timing = time_modes(bench, args.iters, args.repeats, ("ours_val", "ours_val_k", "theirs_val"))
            if args.quick:  # smoke run: the subprocesses ran alongside the timing, which is then only indicative
                memory = collect(procs)
        finally:
            for proc in procs.values():  # only if something above failed
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    _, ours = run_ours(bench, args.iters)
    _, theirs = run_theirs(bench, args.iters)
    _, ours_raw = run_ours(bench, args.iters, smooth=0.0, diverge_th=NO_STOP)
    _, theirs_raw = run_theirs(bench, args.iters, smooth_f=0.0, diverge_th=float("inf"))
    n = min(len(ours_raw.raw_losses), len(theirs_raw.history["loss"]))
    raw_diff = float(np.max(np.abs(ours_raw.raw_losses[:n] - np.asarray(theirs_raw.history["loss"][:n]))))
    _, ours_val = run_mode(bench, "ours_val", args.iters, smooth=0.0)
    _, theirs_val = run_mode(bench, "theirs_val", args.iters, smooth_f=0.0)
    n_val = min(len(ours_val.raw_losses), len(theirs_val.history["loss"]))
    val_diff = float(np.max(np.abs(ours_val.raw_losses[:n_val] - np.asarray(theirs_val.history["loss"][:n_val]))))

    best, iters = timing["best"], timing["iters"]
    mem_kind = "CUDA max_memory_allocated" if bench.device.type == "cuda" else "peak RSS"
    ours_sugg = ", ".join(f"{k}={v:.3g}" for k, v in ours.suggestions().items()) or "none"
    print(f"LR range test benchmark: load_digits ({bench.n_train} train samples, standardised), "
          f"MLP 64-128-128-10, SGD(momentum=0.9), batch {BATCH_SIZE}")
    print(f"{args.iters} iterations, lr {START_LR:g} -> {END_LR:g} (exp), device {bench.device}, "
          f"torch threads {args.threads}, best of {args.repeats} after 1 warm-up")
    print()
    print(f"{'':34}{'ours':>14}{'torch-lr-finder':>18}")
    print(f"{'iterations run':34}{iters['ours']:>14}{iters['theirs']:>18}")
    print(f"{'wall time [ms]':34}{best['ours'] * 1e3:>14.1f}{best['theirs'] * 1e3:>18.1f}")
    print(f"{'per iteration [ms]':34}{best['ours'] * 1e3 / iters['ours']:>14.3f}"
          f"{best['theirs'] * 1e3 / iters['theirs']:>18.3f}")
    print(f"{'peak memory increase [KiB]':34}{memory['ours']['train']:>14.0f}{memory['theirs']['train']:>18.0f}")
    print()
    print(f"wall-time ratio (ours / theirs): {_ratio(best['ours'], best['theirs'])}")
    print(f"peak-memory ratio (ours / theirs): {_ratio(memory['ours']['train'], memory['theirs']['train'])}  "
          f"[{mem_kind} increase over a warmed-up baseline, one fresh subprocess per library]")
    if bench.device.type == "cpu" and max(memory["ours"]["train"], memory["theirs"]["train"]) < 1024:
        params_kib = sum(p.numel() * p.element_size() for p in bench.model.parameters()) / 1024
        print(f"  (both under 1 MiB: page-level noise for a model of {params_kib:.0f} KiB of parameters; "
              f"each library keeps one copy of the model and optimizer state)")
    print()
    print("Suggestions with each library's default settings:")
    print(f"  ours   (smooth=0.98 bias-corrected, diverge_th=4): {len(ours.lrs)} points, {ours.stop_reason}; "
          f"{ours_sugg}")
    print(f"  theirs (smooth_f=0.05, diverge_th=5): {len(theirs.history['lr'])} points; {their_suggestion(theirs)}")
    print(f"Raw losses with smoothing and stopping off: max |ours - theirs| = {raw_diff:.3g} over {n} iterations")
    print()
    report_validation(bench, args, val_timing, memory, val_diff, n_val)
    if args.quick:
        print("(--quick: smoke run; timings overlapped the memory subprocesses and are only indicative)")


def report_validation(bench: Bench, args, timing: dict, memory: dict, val_diff: float, n_val: int) -> None:
    best, iters = timing["best"], timing["iters"]
    n_batches = len(bench.val_loader)
    cols = {"ours_val": "ours (all)", "ours_val_k": f"ours (val_batches={VAL_BATCHES})",
            "theirs_val": "torch-lr-finder (all)"}
    mem = {"ours_val": memory["ours"]["val"], "ours_val_k": memory["ours"]["val_k"],
           "theirs_val": memory["theirs"]["val"]}
    per_step = {"ours_val": n_batches, "ours_val_k": min(VAL_BATCHES, n_batches), "theirs_val": n_batches}
    widths = {"ours_val": 14, "ours_val_k": 24, "theirs_val": 24}

    def row(label, values, fmt):
        print(f"{label:34}" + "".join(f"{format(values[m], fmt):>{widths[m]}}" for m in cols))

    print(f"Validation-loss test: loss on the validation split ({bench.n_val} samples, {n_batches} batches of "
          f"{BATCH_SIZE}, not shuffled) after every step")
    print(f"{'':34}" + "".join(f"{cols[m]:>{widths[m]}}" for m in cols))
    row("validation iterations run", iters, "d")
    row("validation batches per step", per_step, "d")
    row("validation wall time [ms]", {m: best[m] * 1e3 for m in cols}, ".1f")
    row("validation per iteration [ms]", {m: best[m] * 1e3 / iters[m] for m in cols}, ".3f")
    row("validation peak memory [KiB]", mem, ".0f")
    print()
    theirs = best["theirs_val"]
    print(f"validation wall-time ratio vs torch-lr-finder: ours (all) {_ratio(best['ours_val'], theirs)}, "
          f"ours (val_batches={VAL_BATCHES}) {_ratio(best['ours_val_k'], theirs)}")
    print(f"validation peak-memory ratio vs torch-lr-finder: ours (all) "
          f"{_ratio(mem['ours_val'], mem['theirs_val'])}, ours (val_batches={VAL_BATCHES}) "
          f"{_ratio(mem['ours_val_k'], mem['theirs_val'])}  [measured after the training-loss run in the same "
          f"subprocess, peak reset in between]")
    print(f"Validation losses with smoothing and stopping off (all batches): max |ours - theirs| = {val_diff:.3g} "
          f"over {n_val} iterations")


if __name__ == "__main__":
    sys.exit(main())
