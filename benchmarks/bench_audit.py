"""Per-step cost of helpers.audit.LRAudit on an optimizer with 48 param groups.

Prints two figures per optimizer (SGD with momentum, AdamW): the cost of the audit's two
step hooks alone, called directly (what the audit adds to every step, measured without
the noise of the step itself), and ``optimizer.step()`` timed with and without an attached
audit (bare and audited runs alternate; best of several repeats). With ``--tensor-lr`` the
LRs are float32 tensors (one ``.item()`` each). Prints figures only, asserts nothing about
timing.

    .venv/bin/python benchmarks/bench_audit.py             # ~10 s on 2 CPU cores
    .venv/bin/python benchmarks/bench_audit.py --steps 200 # quicker
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers.audit import LRAudit  # noqa: E402

GROUPS = 48


def make(kind: str, tensor_lr: bool) -> torch.optim.Optimizer:
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(16)) for _ in range(GROUPS)]
    for p in params:
        p.grad = torch.randn_like(p)
    lr = (lambda i: torch.tensor(1e-3 * (i + 1))) if tensor_lr else (lambda i: 1e-3 * (i + 1))
    groups = [{"params": [p], "lr": lr(i)} for i, p in enumerate(params)]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=1e-3, momentum=0.9)
    return torch.optim.AdamW(groups, lr=1e-3)


def per_step(opt: torch.optim.Optimizer, steps: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            opt.step()
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def hooks_only(audit: LRAudit, opt: torch.optim.Optimizer, steps: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            audit._before_step(opt, (), {})
            audit._after_step(opt, (), {})
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps per timing (default 1000)")
    parser.add_argument("--repeats", type=int, default=5, help="timings, the best is kept (default 5)")
    parser.add_argument("--tensor-lr", action="store_true", help="float32 tensor LRs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{GROUPS} param groups, {args.steps} steps, best of {args.repeats}, "
          f"{'tensor' if args.tensor_lr else 'float'} LRs, torch {torch.__version__}")
    for kind in ("sgd", "adamw"):
        opt = make(kind, args.tensor_lr)
        per_step(opt, 50, 1)  # warm-up
        bare, audited = float("inf"), float("inf")
        for _ in range(args.repeats):  # alternate, so that load on the machine hits both alike
            bare = min(bare, per_step(opt, args.steps, 1))
            with LRAudit(opt) as audit:
                audited = min(audited, per_step(opt, args.steps, 1))
            assert audit.steps == args.steps
        with LRAudit(opt) as audit:
            hooks = hooks_only(audit, opt, args.steps, args.repeats)
        print(f"{kind:6s} audit hooks: {hooks * 1e6:6.1f} us per step ({hooks / GROUPS * 1e9:.0f} ns per group); "
              f"step {bare * 1e6:7.1f} us bare, {audited * 1e6:7.1f} us audited")

if __name__ == "__main__":
    main()
