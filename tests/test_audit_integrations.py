"""helpers.audit against the real libraries: a transformers.Trainer run, a Lightning Trainer run
and a 2-process accelerate run (gloo on 127.0.0.1), each on CPU with a tiny model built here.

Each run is audited by the ready callback (or an LRAudit on the prepared optimizer), and the
test checks both that a correct run matches its plan and that a broken one is named.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from helpers.audit import LRAudit

ROOT = Path(__file__).resolve().parents[1]


class TinyRegression(torch.nn.Module):
    """A linear model that returns the loss the way a transformers model does."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, x, labels=None):
        out = self.linear(x).squeeze(-1)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


def regression_rows(count: int = 64) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(count, 4, generator=generator)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    return [{"x": x[i], "labels": y[i]} for i in range(count)]


# ---------------------------------------------------------------------- transformers.Trainer
def hf_run(tmp_path, optim: str, scheduler: str, extra_callbacks=()):
    from transformers import Trainer, TrainingArguments

    from helpers.audit_callbacks import HFAuditCallback

    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, gradient_accumulation_steps=2,
        max_steps=12, learning_rate=0.05, warmup_steps=3, lr_scheduler_type=scheduler, optim=optim,
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
        dataloader_num_workers=0, seed=0)
    callback = HFAuditCallback(verbose=False)
    trainer = Trainer(model=TinyRegression(), args=args, train_dataset=regression_rows(),
                      callbacks=[callback, *extra_callbacks])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    return trainer, callback


@pytest.mark.parametrize("optim", ["adamw_torch_fused", "adamw_torch"])
@pytest.mark.parametrize("scheduler", ["linear", "cosine"])
def test_trainer_run_matches_the_plan_of_its_arguments(tmp_path, optim, scheduler):
    trainer, callback = hf_run(tmp_path, optim, scheduler)
    inner = trainer.optimizer.optimizer
    assert getattr(inner, "_step_supports_amp_scaling", False) == (optim == "adamw_torch_fused")
    audit = callback.audit
    assert audit.steps == 12, callback.report
    assert callback.mismatches and all(m is None for m in callback.mismatches.values()), callback.report
    assert audit.lrs()[:4] == pytest.approx([0.0, 0.05 / 3, 0.1 / 3, 0.05], rel=1e-12)  # the warmup
    logged = [entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry]
    assert logged == audit.lrs()  # what the Trainer logs is what the optimizer applied, bit for bit


def test_trainer_scheduler_stepped_twice_per_step_is_named(tmp_path):
    from transformers import TrainerCallback

    class StepsTheSchedulerAgain(TrainerCallback):  # a plausible bug in a custom callback
        def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
            lr_scheduler.step()

    _, callback = hf_run(tmp_path, "adamw_torch", "cosine", extra_callbacks=[StepsTheSchedulerAgain()])
    mismatch = next(iter(callback.mismatches.values()))
    assert mismatch is not None and (mismatch.reason, mismatch.k) == ("stepped too often", 2), callback.report
    assert "LR audit, group 0: step 1:" in callback.report


# ---------------------------------------------------------------------- Lightning
def lightning_run(tmp_path, step_twice: bool):
    import lightning.pytorch as pl

    from helpers.audit_callbacks import LightningAuditCallback

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = TinyRegression()

        def training_step(self, batch, batch_idx):
            loss = self.net(batch["x"], batch["labels"])["loss"]
            if step_twice:  # the bug: stepping the scheduler by hand as well as Lightning does
                self.lr_schedulers().step()
            return loss

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=40)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    loader = torch.utils.data.DataLoader(regression_rows(), batch_size=8)
    callback = LightningAuditCallback(verbose=False)
    trainer = pl.Trainer(max_steps=12, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path),
                         callbacks=[callback])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Module(), loader)
    return callback


@pytest.mark.parametrize("step_twice", [False, True])
def test_lightning_run_is_audited_against_a_copy_of_its_scheduler(tmp_path, step_twice):
    callback = lightning_run(tmp_path, step_twice)
    mismatch = callback.mismatches["0"]
    assert callback.audit.steps == 12, callback.report
    if step_twice:
        assert mismatch is not None and mismatch.reason == "stepped too often" and mismatch.k == 2, callback.report
    else:
        assert mismatch is None, callback.report
        lrs = callback.audit.lrs()  # the one-cycle warmup (12 of 40 steps) from max_lr / 25 to max_lr
        assert lrs[0] == pytest.approx(0.004, rel=1e-12) and lrs[-1] == pytest.approx(0.1, rel=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no logs or checkpoints written


def test_lightning_epoch_interval_scheduler_is_planned_per_epoch(tmp_path):
    import lightning.pytorch as pl

    from helpers.audit_callbacks import LightningAuditCallback

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = TinyRegression()

        def training_step(self, batch, batch_idx):
            return self.net(batch["x"], batch["labels"])["loss"]

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.parameters(), lr=0.1)
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    loader = torch.utils.data.DataLoader(regression_rows(32), batch_size=8)  # 4 optimizer steps per epoch
    callback = LightningAuditCallback(verbose=False, strict=True)
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path),
                         callbacks=[callback])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Module(), loader)
    assert callback.audit.lrs() == [0.1] * 4 + [0.05] * 4 + [0.025] * 4, callback.report
    assert callback.mismatches == {"0": None}


# ---------------------------------------------------------------------- accelerate, 2 processes
ACCELERATE_RANK = textwrap.dedent("""
    import json, os, sys, warnings
    import torch
    from accelerate import Accelerator
    sys.path.insert(0, os.environ["COURSE_ROOT"])
    from helpers.audit import LRAudit
    from helpers import schedules as S

    warnings.simplefilter("ignore")
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    make = lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: S.warmup_cosine_lr(s, 1.0, 5, 20))
    scheduler = make(optimizer)
    data = torch.utils.data.TensorDataset(torch.randn(80, 4), torch.randn(80, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    plan = S.trace(make(S.dummy_optimizer(lr=0.1)), 10)  # 10 optimizer steps per process, planned per step
    with LRAudit(optimizer) as audit:  # the AcceleratedOptimizer
        for x, y in loader:
            loss = torch.nn.functional.mse_loss(model(x), y)
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    mismatch = audit.compare(plan)
    print("RESULT " + json.dumps(dict(rank=accelerator.process_index, steps=audit.steps,
                                      reason=mismatch.reason, k=mismatch.k, text=str(mismatch))))
""")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_process_accelerate_run_names_once_per_process_stepping(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(ACCELERATE_RANK)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COURSE_ROOT": str(ROOT), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2", "ACCELERATE_USE_CPU": "true"}
    procs = [subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)})
             for rank in range(2)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    results = []
    for (out, err), proc in zip(outputs, procs):
        assert proc.returncode == 0, err[-2000:]
        line = next(line for line in out.splitlines() if line.startswith("RESULT "))
        results.append(__import__("json").loads(line[len("RESULT "):]))
    assert sorted(r["rank"] for r in results) == [0, 1]
    for result in results:
        assert result["steps"] == 10
        assert (result["reason"], result["k"]) == ("stepped too often", 2), result["text"]
        assert "does each of the 2 processes step the scheduler? accelerate steps a prepared scheduler" \
            in result["text"]
