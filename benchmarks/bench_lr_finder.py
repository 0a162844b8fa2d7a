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


def load_train_split(seed: int = 0):
    """Standardised 75 % training split of ``load_digits`` (bundled with scikit-learn, no download)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_train, _, y_train, _ = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    return StandardScaler().fit(x_train).transform(x_train).astype(np.float32), y_train.astype(np.int64)


def _tlf():
    import torch_lr_finder.lr_finder as tlf

    tlf.tqdm = lambda iterable, *a, **k: iterable  # it has no switch for its progress bar
    return tlf


class Bench:
    """Data, model and initial weights shared by every run."""

    def __init__(self, device: str, data=None, seed: int = 0) -> None:
        x_train, y_train = load_train_split(seed) if data is None else data
        data = TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
        self.loader = DataLoader(data, batch_size=BATCH_SIZE, shuffle=True)
        self.n_train = len(data)
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


def run_theirs(bench: Bench, iters: int, **kwargs):
    tlf = _tlf()
    opt = bench.fresh_optimizer()
    with contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        finder = tlf.LRFinder(bench.model, opt, bench.criterion, device=bench.device)
        finder.range_test(bench.loader, start_lr=START_LR, end_lr=END_LR, num_iter=iters, step_mode="exp", **kwargs)
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


def time_both(bench: Bench, iters: int, repeats: int) -> dict:
    times = {"ours": [], "theirs": []}
    counts = {}
    for rep in range(repeats + 1):  # the first round is the warm-up
        t, result = run_ours(bench, iters, diverge_th=NO_STOP)
        t2, finder = run_theirs(bench, iters, diverge_th=float("inf"))
        counts = {"ours": len(result.lrs), "theirs": len(finder.history["lr"])}
        if rep:
            times["ours"].append(t)
            times["theirs"].append(t2)
    return {"best": {k: min(v) for k, v in times.items()}, "iters": counts}


def measure_memory(library: str, iters: int, device: str, data_file: str) -> float:
    """Peak-memory increase (KiB) of one run of ``library``; call in a fresh process."""
    with np.load(data_file) as arrays:
        bench = Bench(device, data=(arrays["x"], arrays["y"]))
    runner = run_ours if library == "ours" else run_theirs
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
    del warm, opt
    kwargs = {"diverge_th": NO_STOP} if library == "ours" else {"diverge_th": float("inf")}
    if bench.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.max_memory_allocated()
        runner(bench, iters, **kwargs)
        return (torch.cuda.max_memory_allocated() - base) / 1024
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    runner(bench, iters, **kwargs)
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)


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
    data = load_train_split()
    with tempfile.TemporaryDirectory() as tmp:
        data_file = os.path.join(tmp, "digits.npz")
        np.savez(data_file, x=data[0], y=data[1])
        procs = start_memory_subprocesses(args.iters, args.device, args.threads, data_file)
        try:
            if not args.quick:  # full run: nothing else competes for the CPU while timing
                memory = collect(procs)
            bench = Bench(args.device, data=data)
            timing = time_both(bench, args.iters, args.repeats)
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
    print(f"{'peak memory increase [KiB]':34}{memory['ours']:>14.0f}{memory['theirs']:>18.0f}")
    print()
    print(f"wall-time ratio (ours / theirs): {_ratio(best['ours'], best['theirs'])}")
    print(f"peak-memory ratio (ours / theirs): {_ratio(memory['ours'], memory['theirs'])}  "
          f"[{mem_kind} increase over a warmed-up baseline, one fresh subprocess per library]")
    if bench.device.type == "cpu" and max(memory.values()) < 1024:
        params_kib = sum(p.numel() * p.element_size() for p in bench.model.parameters()) / 1024
        print(f"  (both under 1 MiB: page-level noise for a model of {params_kib:.0f} KiB of parameters; "
              f"each library keeps one copy of the model and optimizer state)")
    print()
    print("Suggestions with each library's default settings:")
    print(f"  ours   (smooth=0.98 bias-corrected, diverge_th=4): {len(ours.lrs)} points, {ours.stop_reason}; "
          f"{ours_sugg}")
    print(f"  theirs (smooth_f=0.05, diverge_th=5): {len(theirs.history['lr'])} points; {their_suggestion(theirs)}")
    print(f"Raw losses with smoothing and stopping off: max |ours - theirs| = {raw_diff:.3g} over {n} iterations")
    if args.quick:
        print("(--quick: smoke run; timings overlapped the memory subprocesses and are only indicative)")


if __name__ == "__main__":
    sys.exit(main())
