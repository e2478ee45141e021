"""Checkpoints: one folder of safetensors files + ``config.json``; no pickles.

Layout::

    config.json              format, version, method, models {name: {registry, kwargs}}, labels, input spec,
                             data spec, seed, position (stage, epoch, step), metrics, export plan, train config
    model.<name>.safetensors every module's state_dict
    training_state.safetensors + training_state.json   optimiser tensors / scalars, RNG states (to resume)
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from runtime.errors import ConfigError, InputError
from runtime.input_spec import InputSpec, parse_input_spec

FORMAT = "ofer-checkpoint"
VERSION = 1
CONFIG_FILE = "config.json"


def _model_file(name: str) -> str:
    return f"model.{name}.safetensors"


@dataclass
class Checkpoint:
    """A loaded checkpoint: its config and the rebuilt modules (in eval mode)."""

    path: Path
    config: dict[str, Any]
    models: dict[str, nn.Module]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> tuple[str, ...]:
        """Label names in output order."""
        return tuple(self.config["labels"])

    @property
    def input(self) -> InputSpec:
        """The input spec the modules take (``bundle_input`` of older distilled students, else ``input``; the short
        form of older checkpoints reads with the default detector's crop geometry).

        Raises:
            ConfigError: The config's spec is invalid.
        """
        return parse_input_spec(self.config.get("bundle_input") or self.config["input"], f"checkpoint {self.path}")

    @property
    def position(self) -> dict[str, int]:
        """``{"stage", "epoch", "step"}``: where training resumes (stage/epoch already done)."""
        return dict(self.config.get("position", {"stage": 0, "epoch": 0, "step": 0}))


# ---------- optimiser / RNG state as tensors + JSON


def _split_state(prefix: str, obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor in a nested dict/list by a reference, collecting tensors by key."""
    if torch.is_tensor(obj):
        key = prefix
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[k, _split_state(f"{prefix}/{k}", v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_split_state(f"{prefix}/{i}", v, tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return _split_state(prefix, torch.from_numpy(obj.astype(np.int64)), tensors)
    return obj


def _join_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`_split_state`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(_join_state(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {k: _join_state(v, tensors) for k, v in obj["__dict__"]}
        return {k: _join_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_state(v, tensors) for v in obj]
    return obj


def capture_rng() -> dict[str, Any]:
    """Python, NumPy and torch (CPU + CUDA) RNG states."""
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(gauss)))
    torch.set_rng_state(state["torch"].to(torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.to(torch.uint8) for t in state["cuda"]])


# ---------- save / load


def save_checkpoint(
    path: str | Path,
    *,
    config: dict[str, Any],
    models: dict[str, nn.Module],
    training_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (a temporary sibling folder renamed over ``path``).

    Args:
        path: Checkpoint folder (replaced if it exists).
        config: JSON config; must hold ``models`` ({name: {registry, kwargs}}), ``labels``, ``input``.
        models: Modules by the names used in ``config["models"]``.
        training_state: Optional nested dict of optimiser/scaler/RNG state (tensors allowed) for resuming.
    """
    path = Path(path)
    missing = set(config["models"]) ^ set(models)
    if missing:
        raise ConfigError(f"checkpoint config and modules disagree on {sorted(missing)}")
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, module in models.items():
        sd = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        save_file(sd, str(tmp / _model_file(name)))
    if training_state is not None:
        tensors: dict[str, torch.Tensor] = {}
        skeleton = _split_state("s", training_state, tensors)
        save_file(tensors, str(tmp / "training_state.safetensors"))
        (tmp / "training_state.json").write_text(json.dumps(skeleton))
    full = {"format": FORMAT, "version": VERSION, **config}
    (tmp / CONFIG_FILE).write_text(json.dumps(full, indent=2, sort_keys=False))
    old = path.with_name(path.name + ".old")
    if path.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
    os.replace(tmp, path)
    if old.exists():
        shutil.rmtree(old)
    return path


def resolve_checkpoint_dir(path: str | Path) -> Path:
    """Accept a checkpoint folder or a training output folder holding ``checkpoint/``."""
    p = Path(path)
    if (p / CONFIG_FILE).is_file():
        return p
    if (p / "checkpoint" / CONFIG_FILE).is_file():
        return p / "checkpoint"
    if not p.exists():
        raise InputError(f"checkpoint {p} does not exist; pass the folder 'ofer train --out' wrote")
    raise InputError(
        f"{p} is not an ofer checkpoint (no {CONFIG_FILE}); pass the folder 'ofer train --out' "
        f"wrote or its checkpoint/ subfolder"
    )


def read_config(path: str | Path) -> dict[str, Any]:
    """The checkpoint's ``config.json``, validated."""
    p = resolve_checkpoint_dir(path)
    try:
        cfg = json.loads((p / CONFIG_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(
            f"checkpoint {p} is corrupt: {CONFIG_FILE} is not valid JSON ({exc}); re-run training or restore the folder"
        ) from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise InputError(f"{p / CONFIG_FILE} is not an ofer checkpoint config (format != {FORMAT!r})")
    if cfg.get("version") != VERSION:
        raise InputError(
            f"checkpoint {p} has version {cfg.get('version')}, this ofer reads version {VERSION}; "
            f"use a matching ofer release"
        )
    for key in ("models", "labels", "input"):
        if key not in cfg:
            raise InputError(f"checkpoint {p} is corrupt: {CONFIG_FILE} lacks {key!r}")
    return cfg


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", with_training_state: bool = False
) -> Checkpoint:
    """Rebuild every module by registry name and load its weights.

    Raises:
        InputError: the folder is missing, not a checkpoint, or a file is corrupt or does not fit its model.
    """
    from .models import create_model

    p = resolve_checkpoint_dir(path)
    cfg = read_config(p)
    models: dict[str, nn.Module] = {}
    for name, spec in cfg["models"].items():
        try:
            module = create_model(spec["registry"], **spec.get("kwargs", {}))
        except KeyError as exc:
            raise InputError(
                f"checkpoint {p} needs model {spec.get('registry')!r} which this ofer does not have ({exc.args[0]})"
            ) from None
        file = p / _model_file(name)
        try:
            sd = load_file(str(file))
        except (OSError, SafetensorError) as exc:
            raise InputError(
                f"checkpoint {p} is corrupt: cannot read {file.name} ({exc}); re-run training or restore the file"
            ) from None
        try:
            module.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise InputError(
                f"checkpoint {p}: {file.name} does not fit model {spec['registry']!r} "
                f"({first}); the weights and config.json are out of step"
            ) from None
        models[name] = module.to(device).eval()
    ck = Checkpoint(path=p, config=cfg, models=models)
    if with_training_state:
        ck.state = load_training_state(p)
    return ck


def load_training_state(path: Path) -> dict[str, Any]:
    """Optimiser/RNG state saved for resuming (empty dict when the checkpoint has none)."""
    tfile, jfile = path / "training_state.safetensors", path / "training_state.json"
    if not tfile.exists() or not jfile.exists():
        return {}
    try:
        tensors = load_file(str(tfile))
        skeleton = json.loads(jfile.read_text())
    except (OSError, ValueError, SafetensorError) as exc:
        raise InputError(
            f"checkpoint {path} is corrupt: training state unreadable ({exc}); "
            f"resume from another checkpoint or start again"
        ) from None
    return _join_state(skeleton, tensors)


def update_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    """Store evaluation metrics in an existing checkpoint's config."""
    p = resolve_checkpoint_dir(path)
    cfg = read_config(p)
    cfg["metrics"] = metrics
    tmp = p / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(cfg, indent=2))
    os.replace(tmp, p / CONFIG_FILE)
