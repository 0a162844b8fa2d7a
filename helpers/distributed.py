"""A real multi-process data-parallel run on the CPU, small enough for a notebook.

:func:`train_data_parallel` starts ``world_size`` processes (``torch.multiprocessing``;
the function they run lives in this module, so it works from a notebook), joins them
into a ``torch.distributed`` process group with the ``gloo`` backend over the loopback
interface, and trains the course's MLP on the digits, data-parallel: every optimizer
step, each rank computes the gradient of its own ``per_rank_batch`` examples and the
ranks average their gradients (as ``DistributedDataParallel`` does), so one step uses an **effective batch** of ``world_size * per_rank_batch`` examples.
Following the linear scaling rule (notebook 04), the peak learning rate is
``reference_lr * effective_batch / reference_batch``, reached by a linear warmup and
followed by a cosine decay (``warmup_cosine_lr``), stepped once per optimizer step.
Every rank attaches an :class:`helpers.audit.LRAudit` to its optimizer and sends its
record back to the parent.

:func:`train_single_process` runs the same loop in the calling process with one
process and the whole effective batch: the average of the ranks' gradients is the
gradient of that batch, so the two runs agree up to floating-point rounding.

The processes start with ``forkserver`` where available (else ``spawn``), each uses
one thread, and they meet on a free TCP port of 127.0.0.1; an error or a time-out in
any of them stops them all and raises ``RuntimeError`` in the caller.

Conventions (exact):

* Step ``t`` draws one global batch of ``world_size * per_rank_batch`` training
  examples from a generator seeded with ``seed`` (the same on every rank, and in
  :func:`train_single_process`); rank ``r`` trains on its ``r``-th slice of
  ``per_rank_batch`` examples.
* The model is ``helpers.models.mlp(seed=seed)`` on every rank (the same weights),
  SGD with momentum 0.9. After ``backward()`` the ranks average their gradients
  (one ``all_reduce``, or ``DistributedDataParallel`` with ``ddp=True``).

Examples
--------
>>> run = train_data_parallel(world_size=2, per_rank_batch=8, steps=6, warmup_steps=2)
>>> run.effective_batch, run.peak_lr
(16, 0.025)
>>> run.same_lrs_on_every_rank, run.lrs[0] == run.planned
(True, True)
>>> [round(lr, 5) for lr in run.lrs[1]]
[0.0, 0.0125, 0.025, 0.02134, 0.0125, 0.00366]
"""
from __future__ import annotations

import multiprocessing
import queue as queue_module
import socket
import time
import traceback
from dataclasses import dataclass, field
from datetime import timedelta

import torch

from . import _validate

__all__ = ["DistributedRun", "train_data_parallel", "train_single_process", "free_port"]

MAX_WORLD_SIZE = 8
START_METHODS = ("spawn", "forkserver")


@dataclass
class DistributedRun:
    """What :func:`train_data_parallel` (or :func:`train_single_process`) returns.

    Attributes
    ----------
    world_size : int
        Number of processes.
    per_rank_batch : int
        Examples per rank and step.
    effective_batch : int
        ``world_size * per_rank_batch``: the examples whose gradient one step averages.
    peak_lr : float
        The learning rate after warmup, scaled linearly from the reference recipe.
    planned : list of float
        The planned LR of every optimizer step (closed form).
    lrs : list of list of float
        ``lrs[rank]``: the LRs rank ``rank``'s optimizer applied (``LRAudit``), one per step.
    losses : list of list of float
        ``losses[rank]``: the training loss of that rank's slice at every step.
    states : list of dict
        ``states[rank]``: that rank's final model ``state_dict`` (CPU tensors).
    seconds : float
        Wall time of the whole call: start of the processes, training, results back.
    """

    world_size: int
    per_rank_batch: int
    effective_batch: int
    peak_lr: float
    planned: list
    lrs: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    states: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def same_lrs_on_every_rank(self) -> bool:
        """Whether every rank applied exactly the same LRs (float equality) at every step."""
        return all(lrs == self.lrs[0] for lrs in self.lrs)

    def max_weight_difference(self, other: "DistributedRun | None" = None) -> float:
        """Largest ``|w_a - w_b|`` over all weights: between the ranks of this run, or rank 0
        of this run and rank 0 of ``other``."""
        pairs = ([(self.states[0], s) for s in self.states[1:]] if other is None
                 else [(self.states[0], other.states[0])])
        diffs = [float((a[k] - b[k]).abs().max()) for a, b in pairs for k in a]
        return max(diffs, default=0.0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it).

    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(world_size, per_rank_batch, steps, warmup_steps, reference_lr, reference_batch, seed, ddp=False) -> dict:
    world_size = _validate.integer("world_size", world_size, low=1, high=MAX_WORLD_SIZE)
    per_rank_batch = _validate.integer("per_rank_batch", per_rank_batch, low=1, high=512)
    steps = _validate.integer("steps", steps, low=1, high=10_000)
    warmup_steps = _validate.integer("warmup_steps", warmup_steps, low=0, high=steps)
    reference_lr = _validate.positive("reference_lr", reference_lr)
    reference_batch = _validate.integer("reference_batch", reference_batch, low=1)
    seed = _validate.integer("seed", seed, low=0, high=2**31 - 1)
    if not isinstance(ddp, bool):
        raise ValueError(f"ddp must be True or False, got {ddp!r}")
    # Loaded here and sent to the processes, which then import nothing but torch and small modules.
    from .data import digits_tensors

    X_train, y_train, _, _ = digits_tensors()
    effective = world_size * per_rank_batch
    return dict(X=X_train.numpy(), y=y_train.numpy(), ddp=ddp, world_size=world_size,
                per_rank_batch=per_rank_batch, steps=steps, warmup_steps=warmup_steps,
                peak_lr=reference_lr * effective / reference_batch, seed=seed)


def _plan(config: dict) -> list:
    from .schedules import trace_fn, warmup_cosine_lr

    return trace_fn(warmup_cosine_lr, config["steps"], base_lr=config["peak_lr"],
                    warmup_steps=config["warmup_steps"], total_steps=config["steps"])


def _train(rank: int, config: dict, world_size: int) -> dict:
    """The training loop of one rank (``world_size`` 1: no process group, no DDP)."""
    from .audit import LRAudit
    from .models import mlp
    from .schedules import torch_scheduler

    X, y = torch.from_numpy(config["X"]), torch.from_numpy(config["y"])
    model = mlp(seed=config["seed"])
    if world_size > 1 and config["ddp"]:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=config["peak_lr"], momentum=0.9)
    scheduler = torch_scheduler("warmup_cosine_lr", optimizer, warmup_steps=config["warmup_steps"],
                                total_steps=config["steps"])
    per_rank = config["per_rank_batch"] * config["world_size"] // world_size
    generator = torch.Generator().manual_seed(config["seed"])
    losses = []
    with LRAudit(optimizer) as audit:
        for _ in range(config["steps"]):
            batch = torch.randint(len(y), (config["world_size"] * config["per_rank_batch"],), generator=generator)
            mine = batch[rank * per_rank:(rank + 1) * per_rank]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(X[mine]), y[mine])
            loss.backward()  # with DDP, the gradients of all ranks are averaged here
            if world_size > 1 and not config["ddp"]:
                _average_gradients(model, world_size)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
    net = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    # NumPy copies: torch tensors sent through a queue would share memory with a process that ends.
    return dict(lrs=audit.lrs(), losses=losses,
                state={k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()})


def _average_gradients(model: torch.nn.Module, world_size: int) -> None:
    """What DDP does after ``backward()``: sum every gradient over the ranks, divide by their number."""
    import torch.distributed as dist

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])  # one all_reduce for all (DDP uses buckets)
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def _worker(rank: int, world_size: int, port: int, config: dict, results, timeout: float) -> None:
    """Entry point of each spawned process: join the group, train, send the result back."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world_size, timeout=timedelta(seconds=timeout))
        try:
            results.put((rank, _train(rank, config, world_size), None))
        finally:
            dist.destroy_process_group()
    except BaseException:  # report every failure to the parent instead of hanging it
        results.put((rank, None, traceback.format_exc()))


def train_data_parallel(world_size: int = 2, *, per_rank_batch: int = 16, steps: int = 30,
                        warmup_steps: int = 5, reference_lr: float = 0.05, reference_batch: int = 32,
                        seed: int = 0, ddp: bool = False, start_method: str | None = None,
                        timeout: float = 60.0) -> DistributedRun:
    """Train with ``world_size`` processes (gloo, CPU, DDP) and return every rank's audited LRs.

    Parameters
    ----------
    world_size : int in [1, 8]
        Number of processes to start.
    per_rank_batch : int in [1, 512]
        Training examples per rank and step; the effective batch is ``world_size`` times that.
    steps : int >= 1
        Optimizer steps (the schedule is built for exactly this many).
    warmup_steps : int in [0, steps]
        Steps of the linear warmup from 0 to the peak LR.
    reference_lr : float > 0
        Learning rate of the reference recipe at batch ``reference_batch``.
    reference_batch : int >= 1
        Batch size of the reference recipe; the peak LR is
        ``reference_lr * effective_batch / reference_batch`` (linear scaling rule).
    seed : int >= 0
        Seed of the model's initialisation and of the batches.
    ddp : bool, default False
        Wrap the model in ``DistributedDataParallel``. By default each rank averages the
        gradients itself after ``backward()`` with one ``all_reduce`` (sum, then divide by
        ``world_size``), which is what DDP computes; DDP's import of ``torch._dynamo``
        adds 2-3 s to the start of every process.
    start_method : {"forkserver", "spawn"}, optional
        How the processes start; both run a function of an importable module (this one),
        so they work from a notebook. ``"spawn"`` starts fresh interpreters that import
        torch (and, at the first ``optimizer.step()``, ``torch._dynamo``): several seconds
        each. ``"forkserver"`` (the default where it exists: Linux, macOS) starts one
        server that imports them once and forks every rank from it: the first call pays
        the imports once, later calls start in a fraction of a second.
    timeout : float > 0
        Seconds to wait for all ranks; on time-out or on an error in any rank the
        processes are stopped and ``RuntimeError`` is raised (with the rank's traceback).

    Returns
    -------
    DistributedRun

    Raises
    ------
    ValueError
        For an invalid argument (the message names it).
    RuntimeError
        If a rank failed or the run took longer than ``timeout``.
    """
    config = _config(world_size, per_rank_batch, steps, warmup_steps, reference_lr, reference_batch, seed, ddp)
    timeout = _validate.positive("timeout", timeout)
    if start_method is None:
        start_method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    start_method = _validate.choice("start_method", start_method, START_METHODS)
    start = time.perf_counter()
    context = torch.multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        # The server imports these once; each rank is then forked from it, ready to train.
        context.set_forkserver_preload(["torch", "torch._dynamo", "helpers.distributed", "helpers.audit",
                                        "helpers.models", "helpers.schedules"])
    results = context.Queue()
    port = free_port()
    processes = [context.Process(target=_worker, args=(rank, world_size, port, config, results, timeout),
                                 daemon=True) for rank in range(world_size)]
    got: dict = {}
    try:
        for process in processes:
            process.start()
        deadline = start + timeout
        while len(got) < world_size:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise RuntimeError(f"the {world_size} processes did not finish within timeout = {timeout} s")
            try:
                rank, result, error = results.get(timeout=min(remaining, 1.0))
            except queue_module.Empty:
                dead = [p for p in processes if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"a process exited with code {dead[0].exitcode} before reporting")
                continue
            if error is not None:
                raise RuntimeError(f"rank {rank} failed:\n{error}")
            got[rank] = result
        for process in processes:
            process.join(timeout=max(1.0, deadline - time.perf_counter()))
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(5)
        results.close()
    return DistributedRun(world_size=world_size, per_rank_batch=config["per_rank_batch"],
                          effective_batch=world_size * config["per_rank_batch"], peak_lr=config["peak_lr"],
                          planned=_plan(config), lrs=[got[r]["lrs"] for r in range(world_size)],
                          losses=[got[r]["losses"] for r in range(world_size)],
                          states=[{k: torch.from_numpy(v) for k, v in got[r]["state"].items()}
                                  for r in range(world_size)],
                          seconds=time.perf_counter() - start)


def train_single_process(world_size: int = 2, *, per_rank_batch: int = 16, steps: int = 30,
                         warmup_steps: int = 5, reference_lr: float = 0.05, reference_batch: int = 32,
                         seed: int = 0) -> DistributedRun:
    """The run of :func:`train_data_parallel` in this process, on the whole effective batch.

    Same arguments (``world_size`` only sets the effective batch and the LR); one process
    trains on all ``world_size * per_rank_batch`` examples of each step.

    >>> one = train_single_process(world_size=2, per_rank_batch=8, steps=6, warmup_steps=2)
    >>> one.world_size, one.effective_batch, one.lrs[0] == one.planned
    (1, 16, True)
    """
    config = _config(world_size, per_rank_batch, steps, warmup_steps, reference_lr, reference_batch, seed)
    start = time.perf_counter()
    result = _train(0, config, world_size=1)
    result["state"] = {k: torch.from_numpy(v) for k, v in result["state"].items()}
    return DistributedRun(world_size=1, per_rank_batch=config["world_size"] * config["per_rank_batch"],
                          effective_batch=config["world_size"] * config["per_rank_batch"],
                          peak_lr=config["peak_lr"], planned=_plan(config), lrs=[result["lrs"]],
                          losses=[result["losses"]], states=[result["state"]],
                          seconds=time.perf_counter() - start)
