"""The one training loop every method runs; methods differ only in their stages and losses.

A :class:`Method` declares its modules (registry names + kwargs), its :class:`Stage` list (epochs, which
modules each optimiser trains, which occlusions the data gets) and its named loss terms. The :class:`Trainer`
does the rest: seeding, data, AMP/channels_last on CUDA, alternating generator/discriminator updates,
data-parallel gradient averaging, one printed line and one ``results.csv`` row per epoch (with held-out
validation when given), per-step CSV logging, ``checkpoint/`` (last) every epoch and ``best/`` (by the
held-out metric), and exact resumption.
"""

from __future__ import annotations

import csv
import json
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from runtime.errors import ConfigError
from runtime.signals import signals_deferred

from . import checkpoint as ckpt
from .augment import PairedOcclusionDataset
from .distributed import (
    DistInfo,
    agree,
    all_reduce_gradients,
    all_reduce_mean,
    barrier,
    broadcast_state,
    init_distributed,
    resolve_device,
)

from .method import Batch, ExportPlan, Method, Models, ModelSpec, Stage  # noqa: F401 - re-exported
from .reporting import StagePlan, TrainingReport, read_results

#: Held-out validation after each epoch: ``models -> {"val_<name>": value, ...}`` (first value: higher is better).
Validate = Callable[[Models], dict[str, float]]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _worker_init(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


class Trainer:
    """Runs a :class:`Method` on a dataset.

    Args:
        method: The method (holds the config).
        dataset: A ``FaceDataset`` (``__len__``, ``__getitem__ -> (uint8 image, int label)``, ``labels``).
        out_dir: Where the CSV log and ``checkpoint/`` go (rank 0 only); ``None`` writes nothing.
        progress: Show a tqdm bar within each epoch (on a terminal only; the epoch lines are printed anyway).
        verbose: Print the plan, the time estimate and one line per epoch (:mod:`.reporting`) on rank 0.
    """

    def __init__(
        self,
        method: Method,
        dataset: Any,
        out_dir: str | Path | None = None,
        progress: bool = True,
        verbose: bool = True,
    ) -> None:
        self.method = method
        self.cfg = method.cfg
        self.dataset = dataset
        self.labels = tuple(dataset.labels)
        method.labels = self.labels
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.device = resolve_device(self.cfg.device)
        self.dist: DistInfo = init_distributed(self.device)
        if self.dist.enabled and self.cfg.device == "auto" and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.progress = progress and self.dist.is_main
        self.cuda = self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.cuda and torch.cuda.is_bf16_supported() else torch.float16
        self.use_amp = bool(self.cfg.amp and self.cuda)
        self.channels_last = bool(self.cfg.channels_last and self.cuda)
        self.specs = method.checked_specs(len(self.labels))
        self.stage_list = method.stages()
        self.rows: list[dict[str, Any]] = []
        self.position = {"stage": 0, "epoch": 0, "step": 0, "stage_step": 0}
        self.models = self._build_models()
        self.report = TrainingReport(method.name, self.out_dir) if self.dist.is_main else None
        self.verbose = verbose and self.report is not None
        #: The best held-out value so far in the last stage: ``{"metric", "value", "stage", "epoch", "step"}``.
        self.best: dict[str, Any] = {}

    # ---------- setup
    def _build_models(self) -> Models:
        seed_everything(self.cfg.seed)
        models: Models = {}
        for name, spec in self.specs.items():
            from .models import create_model

            m = create_model(spec.registry, **spec.kwargs).to(self.device)
            if self.channels_last:
                m = m.to(memory_format=torch.channels_last)
            models[name] = m
        broadcast_state(models.values(), self.dist)
        return models

    def _optimizers(self, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        opts = {}
        for group, names in stage.groups.items():
            params = [p for n in names for p in self.models[n].parameters()]
            opts[group] = torch.optim.Adam(
                params, lr=self.cfg.lr * stage.lr_scale, betas=self.cfg.betas, weight_decay=self.cfg.weight_decay
            )
        return opts

    def _loader(self, index: int, stage: Stage, epoch: int) -> DataLoader:
        ds = PairedOcclusionDataset(self.dataset, self.cfg.input, stage.occlusion, seed=self.cfg.seed)
        data_epoch = index * 100_000 + epoch
        ds.set_epoch(data_epoch)
        sampler = DistributedSampler(
            ds, num_replicas=self.dist.world_size, rank=self.dist.rank, shuffle=True, seed=self.cfg.seed, drop_last=True
        )
        sampler.set_epoch(data_epoch)
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + data_epoch)
        return DataLoader(
            ds,
            batch_size=self.cfg.batch_size,
            sampler=sampler,
            num_workers=self.cfg.num_workers,
            drop_last=len(sampler) > self.cfg.batch_size,
            worker_init_fn=_worker_init,
            generator=gen,
            pin_memory=self.cuda,
        )

    def _set_mode(self, stage: Stage) -> None:
        train = set(stage.trainable)
        for name, m in self.models.items():
            m.train(name in train)
            m.requires_grad_(False)

    # ---------- state
    def config_dict(self) -> dict[str, Any]:
        """The JSON config written into checkpoints."""
        return {
            "method": self.method.name,
            "models": {n: {"registry": s.registry, "kwargs": s.kwargs} for n, s in self.specs.items()},
            "labels": list(self.labels),
            "input": self.cfg.input.to_json(),
            "data": self.cfg.data,
            "seed": self.cfg.seed,
            "position": dict(self.position),
            "stages": [
                {"name": s.name, "epochs": s.epochs, "groups": s.groups, "occlusion": s.occlusion.to_dict()}
                for s in self.stage_list
            ],
            "export": self.method.export_plan().to_dict(),
            "train_config": self.cfg.to_dict(),
            "metrics": {},
        }

    def save(self, optimizers: dict[str, torch.optim.Optimizer], scalers: dict[str, Any]) -> Path | None:
        """Write ``out_dir/checkpoint`` (rank 0) with everything needed to resume."""
        if self.out_dir is None or not self.dist.is_main:
            return None
        state = {
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "scalers": {k: s.state_dict() for k, s in scalers.items()},
            "rng": ckpt.capture_rng(),
            "rows": len(self.rows),
            "epoch_rows": len(self.report.rows) if self.report else 0,
            "best": dict(self.best),
        }
        return ckpt.save_checkpoint(
            self.out_dir / "checkpoint", config=self.config_dict(), models=self.models, training_state=state
        )

    def _resume(self, path: str | Path) -> dict[str, Any]:
        loaded = ckpt.load_checkpoint(path, device=self.device, with_training_state=True)
        if set(loaded.models) != set(self.models):
            raise ConfigError(
                f"checkpoint {loaded.path} holds modules {sorted(loaded.models)}, method "
                f"{self.method.name!r} needs {sorted(self.models)}; resume with the same method"
            )
        if loaded.labels != self.labels:
            raise ConfigError(f"checkpoint labels {loaded.labels} differ from the dataset's {self.labels}")
        for name, spec in self.specs.items():
            was = loaded.config["models"][name]
            if was["registry"] != spec.registry or was["kwargs"] != json.loads(json.dumps(spec.kwargs)):
                raise ConfigError(
                    f"checkpoint {loaded.path} has {name} {was['registry']}({was['kwargs']}), this run "
                    f"builds {spec.registry}({spec.kwargs}); resume with the options it was trained "
                    "with (the same --model/--width/--stem/... and --size)"
                )
        for name, m in self.models.items():
            m.load_state_dict(loaded.models[name].state_dict())
        self.position = loaded.position
        log = self.out_dir / "train_log.csv" if self.out_dir else None
        if log is not None and log.exists():
            with log.open() as f:
                self.rows = list(csv.DictReader(f))[: int(loaded.state.get("rows", 0))]
        if self.report is not None and self.out_dir is not None:
            self.report.rows = read_results(self.out_dir / "results.csv", int(loaded.state.get("epoch_rows", 0)))
        self.best = dict(loaded.state.get("best") or {})
        return loaded.state

    # ---------- the loop
    def steps_per_epoch(self) -> int:
        """Optimiser steps in one epoch (per process; the last partial batch is dropped when there are more)."""
        n = len(self.dataset) // self.dist.world_size
        return n // self.cfg.batch_size if n > self.cfg.batch_size else int(n > 0)

    def plan(self) -> list[StagePlan]:
        """Each stage's epochs and steps (what :meth:`fit` will run from the start)."""
        per = self.steps_per_epoch()
        return [StagePlan(s.name, s.epochs, per, s.max_steps) for s in self.stage_list]

    def describe_models(self) -> str:
        """``generator=inpainter(width=16, depth=3), ...`` (the options that set each module's size)."""
        skip = ("num_classes", "in_channels", "out_channels", "out_size", "use_mask")
        return ", ".join(
            f"{n}={s.registry}(" + ", ".join(f"{k}={v}" for k, v in s.kwargs.items() if k not in skip) + ")"
            for n, s in self.specs.items()
        )

    def fit(
        self,
        resume_from: str | Path | None = None,
        stop_after_epochs: int | None = None,
        time_budget_s: float | None = None,
        stage_budget_s: float | None = None,
        validate: Validate | None = None,
    ) -> dict[str, Any]:
        """Train every stage; returns the final position and last losses.

        Args:
            resume_from: A checkpoint written by a previous (interrupted) run of the same config.
            stop_after_epochs: Stop (after checkpointing) once this many epochs ran in this call.
            time_budget_s: Stop (after checkpointing) at the first epoch end past this many seconds.
            stage_budget_s: End each stage after the first step past this many seconds (benchmarks use it to
                give methods equal compute; the stage then counts as done, so this is not resumable mid-epoch).
            validate: ``models -> {"val_...": value}`` on held-out data after every epoch (rank 0); the first
                value is the one ``best`` (``out_dir/best``, last stage only) is chosen by, higher is better.
        """
        state = self._resume(resume_from) if resume_from is not None else {}
        epochs_run, t0, last = 0, time.monotonic(), {}
        if self.verbose:
            self.report.plan(
                self.plan(),
                batch_size=self.cfg.batch_size,
                done_steps=self.position["step"],
                model=self.describe_models(),
            )
        from tqdm import tqdm

        for si in range(self.position["stage"], len(self.stage_list)):
            stage = self.stage_list[si]
            resuming = bool(state) and si == self.position["stage"]
            if resuming:
                ckpt.restore_rng(state["rng"])
            self.method.on_stage_start(si, stage, self.models)
            optimizers = self._optimizers(stage)
            scalers = {
                g: torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
                for g in stage.groups
            }
            first_epoch = self.position["epoch"] if si == self.position["stage"] else 0
            steps_in_stage = int(self.position.get("stage_step", 0)) if si == self.position["stage"] else 0
            if resuming and first_epoch > 0:  # mid-stage: the same optimisers continue
                for g, o in optimizers.items():
                    o.load_state_dict(state["optimizers"][g])
                for g, s in scalers.items():
                    s.load_state_dict(state["scalers"][g])
            state = {}
            stop, over_budget, t_stage = False, False, time.monotonic()
            for epoch in range(first_epoch, stage.epochs):
                loader = self._loader(si, stage, epoch)
                bar = tqdm(
                    loader,
                    desc=f"{self.method.name}:{stage.name} {epoch + 1}/{stage.epochs}",
                    disable=None if self.progress else True,  # None: hidden when not a terminal
                    leave=True,
                    dynamic_ncols=True,
                )  # on a terminal the bar stays, then the epoch line
                t_epoch, sums, n_steps = time.monotonic(), {}, 0
                for batch in bar:
                    last = self._step(stage, batch, optimizers, scalers)
                    self.position["step"] += 1
                    steps_in_stage += 1
                    n_steps += 1
                    for k, v in last.items():
                        sums[k] = sums.get(k, 0.0) + v
                    self.rows.append({"stage": stage.name, "epoch": epoch, "step": self.position["step"], **last})
                    bar.set_postfix({k: f"{v:.3g}" for k, v in last.items() if k.endswith("total")})
                    if self.verbose:
                        self.report.step(self.position["step"])
                    if stage.max_steps is not None and steps_in_stage >= stage.max_steps:
                        break
                    if stage_budget_s is not None and agree(
                        time.monotonic() - t_stage > stage_budget_s, self.dist, self.device
                    ):
                        over_budget = True
                        break
                bar.close()
                done_stage = (
                    over_budget
                    or epoch + 1 >= stage.epochs
                    or (stage.max_steps is not None and steps_in_stage >= stage.max_steps)
                )
                self.position.update(
                    {"stage": si + 1, "epoch": 0, "stage_step": 0}
                    if done_stage
                    else {"stage": si, "epoch": epoch + 1, "stage_step": steps_in_stage}
                )
                epochs_run += 1
                seconds = time.monotonic() - t_epoch
                row = {
                    "stage": stage.name,
                    "epoch": epoch + 1,
                    "epochs": stage.epochs,
                    "step": self.position["step"],
                    **{k: v / max(1, n_steps) for k, v in sums.items()},
                }
                held_out = validate(self.models) if validate is not None and self.dist.is_main else {}
                items = n_steps * self.cfg.batch_size * self.dist.world_size
                row.update(
                    held_out,
                    seconds=round(time.monotonic() - t_epoch, 3),
                    items_per_s=round(items / max(seconds, 1e-9), 1),
                )
                with signals_deferred():  # Ctrl-C here waits: the logs and checkpoints stay consistent
                    if self.report is not None:
                        (self.report.epoch if self.verbose else self.report.rows.append)(row)
                        if not self.verbose:
                            self.report.write_csv()
                    self._write_log()
                    if held_out and si == len(self.stage_list) - 1:
                        self._keep_best(row, next(iter(held_out)))
                    self.save(optimizers, scalers)
                barrier(self.dist)
                stop = (stop_after_epochs is not None and epochs_run >= stop_after_epochs) or agree(
                    time_budget_s is not None and time.monotonic() - t0 > time_budget_s, self.dist, self.device
                )
                if done_stage or stop:
                    break
            if stop:
                break
        return {"position": dict(self.position), "last": last, "seconds": time.monotonic() - t0}

    def _keep_best(self, row: dict[str, Any], metric: str) -> None:
        """Save ``out_dir/best`` (weights and config, no optimiser state) when ``row[metric]`` beats the best."""
        if self.best.get("metric") == metric and float(row[metric]) <= float(self.best["value"]):
            return
        self.best = {
            "metric": metric,
            "value": float(row[metric]),
            "stage": row["stage"],
            "epoch": row["epoch"],
            "step": row["step"],
        }
        if self.out_dir is not None and self.dist.is_main:
            config = self.config_dict()
            config["best"] = dict(self.best)
            ckpt.save_checkpoint(self.out_dir / "best", config=config, models=self.models)

    def _to_device(self, batch: Batch) -> Batch:
        out = {}
        for k, v in batch.items():
            v = v.to(self.device, non_blocking=True)
            if self.channels_last and v.dim() == 4:
                v = v.contiguous(memory_format=torch.channels_last)
            out[k] = v
        return out

    def _step(
        self, stage: Stage, batch: Batch, optimizers: dict[str, torch.optim.Optimizer], scalers: dict[str, Any]
    ) -> dict[str, float]:
        batch = self._to_device(batch)
        cache: dict[str, Any] = {}
        logs: dict[str, float] = {}
        for group in ("main", "disc"):
            if group not in stage.groups:
                continue
            self._set_mode(stage)
            params = [p for n in stage.groups[group] for p in self.models[n].parameters()]
            for p in params:
                p.requires_grad_(True)
            optimizers[group].zero_grad(set_to_none=True)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                fn = self.method.losses if group == "main" else self.method.discriminator_losses
                terms = fn(stage, batch, self.models, cache)
            if not terms:
                raise ConfigError(
                    f"method {self.method.name!r} stage {stage.name!r}: every {group} loss term "
                    f"is switched off; enable at least one"
                )
            total = sum(self.method.weight(k) * v.float() for k, v in terms.items())
            if not torch.isfinite(total):
                raise ConfigError(
                    f"{self.method.name}: {group} loss became non-finite at step "
                    f"{self.position['step']} ({ {k: float(v) for k, v in terms.items()} }); "
                    f"lower --lr or check the data"
                )
            scalers[group].scale(total).backward()
            all_reduce_gradients(params, self.dist)
            scalers[group].step(optimizers[group])
            scalers[group].update()
            for k, v in terms.items():
                logs[k] = all_reduce_mean(float(v.detach()), self.dist, self.device)
            logs[f"{group}_total"] = all_reduce_mean(float(total.detach()), self.dist, self.device)
        self._set_mode(stage)
        broadcast_state([self.models[n] for n in stage.trainable], self.dist, buffers_only=True)
        self.method.after_step(stage, self.models)
        return logs

    def _write_log(self) -> None:
        if self.out_dir is None or not self.dist.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        fields: list[str] = []
        for r in self.rows:
            fields.extend(k for k in r if k not in fields)
        with (self.out_dir / "train_log.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(self.rows)
