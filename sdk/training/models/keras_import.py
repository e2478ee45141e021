"""Load the weights of a Keras HDF5 model file (Keras 2 ``model.save`` / ``save_weights``) into a PyTorch model.

Only ``h5py`` is needed (no TensorFlow). Layers are matched in order: the Keras layers that hold weights,
in the file's ``layer_names`` order, against the PyTorch model's weighted modules in ``model.modules()``
order. Supported pairs:

=====================  ================================================================
Keras                  PyTorch
=====================  ================================================================
Conv2D                 ``nn.Conv2d`` (``groups == 1``); kernel (H, W, in, out) -> (out, in, H, W)
DepthwiseConv2D        ``nn.Conv2d`` with ``groups == in_channels``; (H, W, in, mult) -> (in*mult, 1, H, W)
SeparableConv2D        a module with ``depthwise`` and ``pointwise`` ``nn.Conv2d`` children
BatchNormalization     ``nn.BatchNorm2d`` / ``nn.BatchNorm1d`` (eps set to the Keras epsilon)
Dense                  ``nn.Linear``; kernel (in, out) -> (out, in)
=====================  ================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runtime.errors import ConfigError, InputError


@dataclass
class KerasLayer:
    """One weighted layer of a Keras HDF5 file."""

    name: str
    class_name: str
    config: dict
    weights: dict[str, np.ndarray]  # short name (kernel, bias, gamma, ...) -> array


def read_keras_layers(path: str | Path) -> list[KerasLayer]:
    """The weighted layers of a Keras HDF5 file, in the file's layer order."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Keras weights file not found: {path}; pass the path of an .h5/.hdf5 file.")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path} is not an HDF5 file ({exc}); pass a Keras .h5/.hdf5 model file.") from None
    with f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group.attrs:
            raise InputError(
                f"{path} has no Keras 'layer_names' attribute; save the model with Keras "
                "model.save(...h5) or model.save_weights(...h5)."
            )
        classes = _layer_classes(f)
        layers = []
        for raw in group.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            weight_names = [
                w.decode() if isinstance(w, bytes) else str(w) for w in group[name].attrs.get("weight_names", [])
            ]
            if not weight_names:
                continue
            weights = {w.split("/")[-1].split(":")[0]: np.asarray(group[name][w]) for w in weight_names}
            class_name, config = classes.get(name, ("?", {}))
            layers.append(KerasLayer(name, class_name, config, weights))
    return layers


def _layer_classes(f: object) -> dict[str, tuple[str, dict]]:
    """Layer name -> (Keras class name, layer config) from the ``model_config`` attribute, if present."""
    raw = f.attrs.get("model_config")  # type: ignore[attr-defined]
    if raw is None:
        return {}
    cfg = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return {layer["config"]["name"]: (layer["class_name"], layer["config"]) for layer in cfg["config"]["layers"]}


def _torch_units(model: nn.Module) -> list[tuple[str, str, nn.Module]]:
    """(qualified name, Keras class it takes weights from, module) for each weighted module, in order."""
    units: list[tuple[str, str, nn.Module]] = []
    inside: set[int] = set()
    for qname, module in model.named_modules():
        if id(module) in inside:
            continue
        depthwise, pointwise = getattr(module, "depthwise", None), getattr(module, "pointwise", None)
        if isinstance(depthwise, nn.Conv2d) and isinstance(pointwise, nn.Conv2d):
            units.append((qname, "SeparableConv2D", module))
            inside.update({id(depthwise), id(pointwise)})
        elif isinstance(module, nn.Conv2d):
            is_dw = module.groups > 1 and module.groups == module.in_channels
            units.append((qname, "DepthwiseConv2D" if is_dw else "Conv2D", module))
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            units.append((qname, "BatchNormalization", module))
        elif isinstance(module, nn.Linear):
            units.append((qname, "Dense", module))
    return units


def _converted(layer: KerasLayer, kind: str, module: nn.Module) -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    """Target tensor -> Keras array converted to PyTorch layout, for one matched pair."""
    w = layer.weights
    out: dict[str, tuple[torch.Tensor, np.ndarray]] = {}
    if kind == "Conv2D":
        out["weight"] = (module.weight, w["kernel"].transpose(3, 2, 0, 1))
    elif kind == "DepthwiseConv2D":
        k = w["depthwise_kernel"]  # (H, W, in, mult) -> (in*mult, 1, H, W), channel-major like TF
        out["weight"] = (module.weight, k.reshape(k.shape[0], k.shape[1], -1).transpose(2, 0, 1)[:, None])
    elif kind == "SeparableConv2D":
        k = w["depthwise_kernel"]
        out["depthwise.weight"] = (
            module.depthwise.weight,
            k.reshape(k.shape[0], k.shape[1], -1).transpose(2, 0, 1)[:, None],
        )
        out["pointwise.weight"] = (module.pointwise.weight, w["pointwise_kernel"].transpose(3, 2, 0, 1))
        if "bias" in w:
            out["pointwise.bias"] = (module.pointwise.bias, w["bias"])
        return out
    elif kind == "Dense":
        out["weight"] = (module.weight, w["kernel"].T)
    elif kind == "BatchNormalization":
        n = module.num_features
        out["weight"] = (module.weight, w.get("gamma", np.ones(n, np.float32)))
        out["bias"] = (module.bias, w.get("beta", np.zeros(n, np.float32)))
        out["running_mean"] = (module.running_mean, w["moving_mean"])
        out["running_var"] = (module.running_var, w["moving_variance"])
        return out
    if "bias" in w:
        out["bias"] = (module.bias, w["bias"])
    return out


def load_keras_hdf5_weights(model: nn.Module, path: str | Path) -> None:
    """Copy the weights of the Keras HDF5 file ``path`` into ``model`` (in place).

    Raises:
        InputError: the file is missing or not a Keras HDF5 file.
        ConfigError: the file's layers do not match the model (count, kind, shape or stride); the
            message names the first mismatching pair. Nothing is copied in that case.
    """
    layers = read_keras_layers(path)
    units = _torch_units(model)
    if len(layers) != len(units):
        raise ConfigError(
            f"{path} has {len(layers)} weighted layers but {type(model).__name__} has {len(units)} weighted "
            f"modules; create the model with the architecture the file was saved from.\n"
            f"file: {[f'{layer.name}:{layer.class_name}' for layer in layers]}\n"
            f"model: {[f'{q}:{k}' for q, k, _ in units]}"
        )
    pending: list[tuple[torch.Tensor, np.ndarray]] = []
    eps: list[tuple[nn.Module, float]] = []
    for layer, (qname, kind, module) in zip(layers, units):
        where = f"Keras layer {layer.name!r} ({layer.class_name}) vs model module {qname!r} ({kind})"
        if layer.class_name not in ("?", kind):
            raise ConfigError(f"layer kinds differ: {where}; the model's layer order must follow the file's.")
        strides = layer.config.get("strides")
        if strides is not None and isinstance(module, nn.Conv2d) and tuple(strides) != tuple(module.stride):
            raise ConfigError(f"strides differ ({tuple(strides)} vs {tuple(module.stride)}): {where}.")
        try:
            pairs = _converted(layer, kind, module)
        except KeyError as exc:
            raise ConfigError(f"weight {exc} missing: {where}.") from None
        unused = set(layer.weights) - {
            "kernel",
            "bias",
            "depthwise_kernel",
            "pointwise_kernel",
            "gamma",
            "beta",
            "moving_mean",
            "moving_variance",
        }
        if unused:
            raise ConfigError(f"unsupported weights {sorted(unused)}: {where}.")
        if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
            tgt = module.pointwise if kind == "SeparableConv2D" else module
            if ("bias" in layer.weights) != (tgt.bias is not None):
                raise ConfigError(f"one side has a bias and the other not: {where}.")
        for tname, (tensor, array) in pairs.items():
            if tuple(tensor.shape) != tuple(array.shape):
                raise ConfigError(
                    f"shape of {tname} differs (model {tuple(tensor.shape)}, file converted "
                    f"{tuple(array.shape)}): {where}."
                )
            pending.append((tensor, array))
        if kind == "BatchNormalization":
            eps.append((module, float(layer.config.get("epsilon", 1e-3))))
    for module, value in eps:
        module.eps = value
    with torch.no_grad():
        for tensor, array in pending:
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(array)).to(tensor.dtype))
