"""``ofer eval MODEL --teacher T --data SPEC --out DIR``: occlusion consistency on held-out people, no labels needed.

For each face of the evaluated split: the teacher's answer on the clean face is the reference; the model answers
on the same face clean and under each occluder kind. Agreement, Cohen's κ, mean TV distance per kind with 95 %
intervals from a bootstrap over people (``sdk.training.consistency``); writes consistency.json/.md/.png.
A checkpoint of the inpaint route (``ofer distill --route inpaint``) inpaints with the occluders' true masks; a
bundle runs as deployed, with its own occlusion estimate.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: Default occluder kinds of the consistency table.
CONSISTENCY_PROTOCOLS = ("clean", "headset", "sunglasses", "mask", "hand", "cup", "phone", "upper_half", "lower_half")


def predictor(path: str, args: argparse.Namespace) -> tuple[Callable[[np.ndarray], np.ndarray], Any, tuple[str, ...]]:
    """``(predict(uint8 crops) -> probs, InputSpec, labels)`` of a bundle or checkpoint folder."""
    from sdk.bundle_eval import bundle_predictor
    from sdk.training.evaluation import torch_predictor

    if (Path(path) / "manifest.json").is_file():
        # As deployed: the bundle's own pipeline, with its occlusion estimate deciding routes and inpainting masks.
        bp = bundle_predictor(path, None, backend=args.backend, precision=args.precision, masks="estimate")
        predict, spec, labels = bp.predict, bp.spec, bp.labels
    else:
        from sdk.training.checkpoint import load_checkpoint

        ck = load_checkpoint(path, device=args.device)
        spec, labels = ck.input, ck.labels
        predict = torch_predictor(ck.models, ck.config["export"], spec, args.device)

    def run(images: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
        """``masks``: the occluders' masks, for a checkpoint's inpaint route (a bundle estimates its own)."""
        masks = np.zeros(images.shape[:3], np.uint8) if masks is None else masks
        out = [
            predict(images[s : s + args.batch_size], masks[s : s + args.batch_size])
            for s in range(0, len(images), args.batch_size)
        ]
        return np.concatenate(out)

    return run, spec, tuple(labels)


def run_consistency(args: argparse.Namespace, out: Path) -> int:
    """The ``--teacher`` branch of ``ofer eval``."""
    from runtime.errors import ConfigError
    from runtime.preprocess import fit_face
    from sdk.training.consistency import consistency, write_consistency
    from sdk.training.evaluation import occluded_views_and_masks
    from sdk.training.methods import open_data, open_eval_data

    from .train import parse_protocol_list

    protocols = list(parse_protocol_list(args.protocols)) if args.protocols else list(CONSISTENCY_PROTOCOLS)
    if "clean" not in protocols:
        protocols.insert(0, "clean")
    model, m_spec, m_labels = predictor(args.checkpoint, args)
    teacher, t_spec, t_labels = predictor(args.teacher, args)
    if m_labels != t_labels:
        raise ConfigError(
            f"the model's labels {m_labels} differ from the teacher's {t_labels}; compare models "
            f"with the same label set"
        )
    data = open_data(args.data, args.split) if args.split else open_eval_data(args.data)
    n = len(data) if args.limit is None else min(len(data), args.limit)
    raw = [data[i][0] for i in range(n)]
    people = [getattr(data, "subject", lambda i: None)(i) or f"face{i}" for i in range(n)]
    t_probs = teacher(np.stack([fit_face(r, t_spec) for r in raw]))
    crops = np.stack([fit_face(r, m_spec) for r in raw])
    probs = {}
    for p in protocols:
        views, masks = occluded_views_and_masks(crops, p, args.seed)
        probs[p] = model(crops if p == "clean" else views, masks)
    report = consistency(
        t_probs,
        probs,
        people,
        labels=t_labels,
        model=Path(args.checkpoint).name,
        teacher=Path(args.teacher).name,
        seed=args.seed,
    )
    write_consistency(
        [report], out, title=f"{Path(args.checkpoint).name} vs {Path(args.teacher).name} on {len(set(people))} people"
    )
    print(report.markdown())
    return 0
