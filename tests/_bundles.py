"""Real bundles for the pipeline and sample tests: registry models exported with export_onnx + write_bundle.

The weights are random (seeded): these bundles test the plumbing (shapes, masks, routing, blending), not accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LABELS7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
SPEC = {
    "size": [64, 64],
    "channels": 1,
    "color": "gray",
    "layout": "NCHW",
    "scale": 1 / 255,
    "mean": [0.5],
    "std": [0.5],
    "crop_margin": 0.075,
    "crop_offset": [0.0, -0.09],
}


def _sharpened(module):
    import torch

    class Sharpened(torch.nn.Module):
        """Logits x 100: a freshly initialised classifier gives near-uniform scores; this makes input changes
        visible in the probabilities."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x):
            return self.inner(x) * 100.0

    return Sharpened()


def export_models(work: Path, seed: int = 0) -> dict[str, Path]:
    """Export the registry ``inpainter`` (1 channel, mask input, blend) and ``mini_xception`` to ONNX."""
    import torch

    from export.onnx import export_onnx
    from sdk.training.models import create_model

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    image = rng.uniform(-1, 1, (2, 1, 64, 64)).astype(np.float32)
    mask = np.zeros((2, 1, 64, 64), np.float32)
    mask[:, :, :32] = 1
    inpainter = create_model("inpainter", in_channels=1, use_mask=True, blend=True, width=8, depth=2)
    # output not named "image": that is the input's name, and the exporter would rename the input to "image.1"
    export_onnx(inpainter, {"image": image, "mask": mask}, work / "inpainter.onnx", output_names=("inpainted",))
    clf = _sharpened(create_model("mini_xception", num_classes=7, in_channels=1))
    export_onnx(clf, image, work / "classifier.onnx", output_names=("logits",))
    return {"inpainter": work / "inpainter.onnx", "classifier": work / "classifier.onnx"}


def write_test_bundle(
    folder: Path,
    models: dict[str, Path],
    *,
    inpainter: bool = True,
    extra_engines: list[dict] | None = None,
    inpainter_output: str = "image",
) -> Path:
    """A bundle with the classifier, optionally the inpainter, and any extra engines."""
    from runtime.bundle import write_bundle

    engines = [{"name": "classifier", "path": models["classifier"], "file": "classifier.onnx", "role": "classifier"}]
    if inpainter:
        engines.append(
            {
                "name": "inpainter",
                "path": models["inpainter"],
                "file": "inpainter.onnx",
                "role": "inpainter",
                "output": inpainter_output,
            }
        )
    engines += extra_engines or []
    write_bundle(
        folder,
        labels=LABELS7,
        input_spec=SPEC,
        engines=engines,
        pipelines=["direct", "inpaint", "auto"] if inpainter else ["direct"],
        provenance={"method": "test (random weights)", "licence": "Apache-2.0"},
    )
    return folder
