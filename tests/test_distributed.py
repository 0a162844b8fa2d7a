"""helpers.distributed: a real 2-process gloo run, its audited LRs, and its arguments.

The processes start once per module (a forkserver, or spawned interpreters on
systems without one); the runs themselves take a fraction of a second.
"""
from __future__ import annotations

import pytest
import torch

from helpers import distributed as D


@pytest.fixture(scope="module")
def two_ranks() -> D.DistributedRun:
    return D.train_data_parallel(world_size=2, per_rank_batch=8, steps=12, warmup_steps=3, seed=1)


def test_every_rank_applied_the_planned_lrs(two_ranks):
    assert len(two_ranks.lrs) == 2 and all(len(lrs) == 12 for lrs in two_ranks.lrs)
    assert two_ranks.same_lrs_on_every_rank
    assert two_ranks.lrs[0] == two_ranks.lrs[1] == two_ranks.planned  # exact: float equality
    assert two_ranks.planned[0] == 0.0 and max(two_ranks.planned) == two_ranks.peak_lr


def test_effective_batch_and_linear_scaling(two_ranks):
    assert (two_ranks.world_size, two_ranks.per_rank_batch, two_ranks.effective_batch) == (2, 8, 16)
    assert two_ranks.peak_lr == 0.05 * 16 / 32  # reference recipe: lr 0.05 at batch 32


def test_ranks_stay_in_sync_and_equal_one_process_on_the_effective_batch(two_ranks):
    assert two_ranks.max_weight_difference() == 0.0  # averaged gradients: identical updates
    one = D.train_single_process(world_size=2, per_rank_batch=8, steps=12, warmup_steps=3, seed=1)
    assert one.world_size == 1 and one.effective_batch == 16 and one.lrs[0] == two_ranks.planned
    assert 0.0 <= two_ranks.max_weight_difference(one) < 1e-5  # same gradient up to rounding
    # and the weights really moved: a run with another seed ends elsewhere
    other = D.train_single_process(world_size=2, per_rank_batch=8, steps=12, warmup_steps=3, seed=2)
    assert two_ranks.max_weight_difference(other) > 1e-2


def test_ddp_computes_the_same_run():
    ddp = D.train_data_parallel(world_size=2, per_rank_batch=8, steps=4, warmup_steps=1, ddp=True)
    plain = D.train_data_parallel(world_size=2, per_rank_batch=8, steps=4, warmup_steps=1)
    assert ddp.same_lrs_on_every_rank and ddp.lrs == plain.lrs
    assert ddp.max_weight_difference(plain) < 1e-6


def test_three_ranks():
    run = D.train_data_parallel(world_size=3, per_rank_batch=4, steps=3, warmup_steps=0)
    assert run.effective_batch == 12 and len(run.lrs) == 3 and run.same_lrs_on_every_rank


@pytest.mark.parametrize("kwargs, message", [
    (dict(world_size=0), r"world_size must be an integer in \[1, 8\], got 0"),
    (dict(world_size=2.0), "world_size must be an integer"),
    (dict(per_rank_batch=0), "per_rank_batch must be an integer"),
    (dict(steps=0), "steps must be an integer"),
    (dict(steps=5, warmup_steps=6), r"warmup_steps must be an integer in \[0, 5\], got 6"),
    (dict(reference_lr=-0.1), "reference_lr must be a finite number > 0"),
    (dict(reference_batch=0), "reference_batch must be an integer"),
    (dict(seed=-1), "seed must be an integer"),
    (dict(ddp="yes"), "ddp must be True or False"),
    (dict(timeout=0), "timeout must be a finite number > 0"),
    (dict(start_method="fork"), "start_method must be one of 'spawn', 'forkserver', got 'fork'"),
])
def test_bad_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        D.train_data_parallel(**kwargs)


def test_bad_arguments_of_the_single_process_run():
    with pytest.raises(ValueError, match="per_rank_batch"):
        D.train_single_process(per_rank_batch=-3)


def test_a_run_past_its_timeout_raises_and_leaves_no_process():
    with pytest.raises(RuntimeError, match="did not finish within timeout"):
        D.train_data_parallel(world_size=2, per_rank_batch=8, steps=10_000, timeout=0.5)
    assert not [p for p in torch.multiprocessing.active_children() if p.name.startswith("Process")]


def test_free_port_is_a_port():
    assert 1024 <= D.free_port() < 65536
