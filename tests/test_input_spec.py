"""One input spec, one preprocessing: training's data path and the runtime's serving path give the same tensor.

The serving path is what the frame processor and the pipelines call: ``crop_face`` (a face box of a frame) then
``to_tensor``. The training paths are every place a model sees a face in ``sdk.training``: the torch dataset
wrapper, the occlusion-pair dataset, the distillation pairs, and the evaluation of a checkpoint. A real face photo
(and a colour procedural face) goes through each, shrunk, at size and enlarged, for every kind of spec there is.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.bundle import load_bundle, write_bundle
from runtime.errors import BundleError, ConfigError, InputError
from runtime.input_spec import DEFAULT_CROP_MARGIN, DEFAULT_CROP_OFFSET, InputSpec, parse_input_spec
from runtime.preprocess import crop_face, fit_face, to_tensor

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLE = ROOT / "sdk" / "default_bundle"
SPECS = {
    "default-bundle-gray64": lambda: load_bundle(DEFAULT_BUNDLE).input,
    "train-default-gray48": lambda: InputSpec.square(48, 1),
    "train-rgb48": lambda: InputSpec.square(48, 3),
    "bgr-per-channel": lambda: InputSpec((40, 40), 3, "bgr", mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3)),
    "gray-scale1": lambda: InputSpec((32, 32), 1, "gray", 1.0, (127.5,), (127.5,)),
}


class Faces:
    """A real (tiny) dataset of face crops, every one labelled 0."""

    labels = ("a", "b")

    def __init__(self, images: list[np.ndarray]) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.images[i], 0


@pytest.fixture(scope="module")
def faces(media_dir: Path) -> list[np.ndarray]:
    """A real face photo cropped around its face, at three sizes, and a colour procedural face."""
    from runtime.datasets.procedural import ProceduralFaces

    photo = cv2.imread(str(media_dir / "single_face.jpg"))
    h, w = photo.shape[:2]
    face = np.ascontiguousarray(photo[h // 8 : h - h // 8, w // 6 : w - w // 6])
    return [
        face,
        cv2.resize(face, (48, 48), interpolation=cv2.INTER_AREA),
        cv2.resize(face, (23, 29)),
        ProceduralFaces(4, size=56, seed=1, split="test", color=True)[0][0],
    ]


def serving(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The runtime's path for a face whose box is the whole image (a ready crop: no margin or offset)."""
    ready = replace(spec, crop_margin=0.0, crop_offset=(0.0, 0.0))
    h, w = image.shape[:2]
    return to_tensor([crop_face(image, (0.0, 0.0, float(w), float(h)), ready, square=False)], spec)[0]


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_training_and_serving_give_identical_tensors(kind: str, faces: list[np.ndarray]) -> None:
    import torch

    from sdk.training.augment import OcclusionMix, PairedOcclusionDataset
    from sdk.training.data.torch_dataset import TorchFaceDataset
    from sdk.training.distill.data import PairedFaces
    from sdk.training.evaluation import evaluate, torch_predictor

    spec = SPECS[kind]()
    data = Faces(faces)
    want = [serving(img, spec) for img in faces]
    c, (h, w) = spec.channels, spec.size
    assert all(x.shape == (c, h, w) and x.dtype == np.float32 for x in want)
    assert not np.array_equal(want[0], want[3])  # the images differ, so equality below is not vacuous

    paths = {"TorchFaceDataset": [TorchFaceDataset(data, spec)[i][0] for i in range(len(data))]}
    pairs = PairedOcclusionDataset(data, spec, OcclusionMix(("clean",)), seed=0)
    paths["PairedOcclusionDataset"] = [pairs[i]["clean"] for i in range(len(data))]
    paths["PairedOcclusionDataset (occluded, clean protocol)"] = [pairs[i]["occluded"] for i in range(len(data))]
    distill = PairedFaces(data, spec, ("clean",), None)
    paths["distill.PairedFaces"] = [distill[i]["clean"] for i in range(len(data))]

    seen: list[torch.Tensor] = []

    class Recorder(torch.nn.Module):
        """A classifier that keeps the tensors it is given (two classes, logits from the mean)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.clone())
            return torch.stack([x.mean((1, 2, 3)), -x.mean((1, 2, 3))], 1)

    evaluate(torch_predictor({"clf": Recorder()}, {"classifier": "clf"}, spec), data, ["clean"], spec)
    paths["evaluate/torch_predictor"] = list(torch.cat(seen))
    for name, got in paths.items():
        assert len(got) == len(want), name
        for i, (g, x) in enumerate(zip(got, want)):
            np.testing.assert_array_equal(
                g.numpy() if isinstance(g, torch.Tensor) else g,
                x,
                err_msg=f"{kind}: {name} differs from serving on image {i}",
            )


def test_fit_face_is_crop_face_of_the_whole_image(faces: list[np.ndarray]) -> None:
    spec = InputSpec.square(48, 1, crop_margin=0.0, crop_offset=(0.0, 0.0))
    for img in faces:
        h, w = img.shape[:2]
        assert np.array_equal(fit_face(img, spec), crop_face(img, (0, 0, w, h), spec, square=False))
    gray = cv2.cvtColor(faces[0], cv2.COLOR_BGR2GRAY)
    assert np.array_equal(fit_face(gray[..., None], spec), fit_face(gray, spec))
    with pytest.raises(InputError, match="expected uint8 HxW"):
        fit_face(faces[0].astype(np.float32), spec)


def test_gray_crop_is_converted_before_shrinking(faces: list[np.ndarray]) -> None:
    """A gray model's crop of a BGR frame is the crop of the frame turned gray first: the region is converted,
    then area-filtered (a third of the pixels to average), not averaged in colour and converted after."""
    spec = InputSpec.square(48, 1, crop_margin=0.0, crop_offset=(0.0, 0.0))
    photo = faces[0]
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    h, w = photo.shape[:2]
    side = 0.6 * min(w, h)
    inside = (0.2 * w, 0.2 * h, 0.2 * w + side, 0.2 * h + side)  # shrunk > 2x, no padding
    np.testing.assert_array_equal(crop_face(photo, inside, spec), crop_face(gray, inside, spec))
    over_edge = (-10.0, -5.0, w * 0.5, h * 0.6)  # padded (a large padded region is pre-shrunk in colour)
    for box in (inside, over_edge):
        crop = crop_face(photo, box, spec)
        assert crop.shape == (48, 48) and crop.dtype == np.uint8
        colour = crop_face(photo, box, InputSpec.square(48, 3, color="bgr", crop_margin=0.0, crop_offset=(0.0, 0.0)))
        after = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY).astype(int)
        assert np.abs(crop.astype(int) - after).max() <= 1  # converting after the filter: within one gray level


def test_manifests_load_exactly_as_before(tmp_path: Path) -> None:
    """The shipped default bundle's ``input`` and a written bundle's read back field for field."""
    from tests.conftest import LABELS7, make_tiny_classifier

    section = json.loads((DEFAULT_BUNDLE / "manifest.json").read_text())["input"]
    spec = load_bundle(DEFAULT_BUNDLE).input
    assert spec.to_json() == section and InputSpec.from_json(section) == spec
    assert (spec.crop_margin, spec.crop_offset) == (DEFAULT_CROP_MARGIN, DEFAULT_CROP_OFFSET)  # the short form's
    assert spec.size == (64, 64) and spec.color == "gray" and spec.mean == (0.5,)
    minimal = {k: section[k] for k in ("size", "channels", "color", "scale", "mean", "std")}
    old = InputSpec.from_json(minimal)
    assert (old.layout, old.crop_margin, old.crop_offset) == ("NCHW", 0.0, (0.0, 0.0))
    written = InputSpec((64, 64), 1, "gray", 1 / 255, (0.25,), (0.75,), 0.2, "NCHW", (0.1, -0.2))
    write_bundle(
        tmp_path / "b",
        labels=LABELS7,
        input_spec=written,
        engines=[
            {
                "name": "classifier",
                "path": make_tiny_classifier(tmp_path / "c.onnx"),
                "file": "classifier.onnx",
                "format": "onnx",
                "precision": "fp32",
                "role": "classifier",
            }
        ],
    )
    assert load_bundle(tmp_path / "b").input == written
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["input"] == written.to_json()
    with pytest.raises(BundleError, match=r"invalid bundle manifest \(m\): 'input.size' must be \[height, width\]"):
        InputSpec.from_json({**section, "size": 64}, "m")  # manifests stay strict: no short form


def test_user_specs_parse_both_forms_and_fail_with_one_config_error() -> None:
    short = {"size": 48, "channels": 1, "mean": 0.5, "std": 0.5, "color": "rgb"}  # older checkpoints' form
    assert parse_input_spec(short, "ckpt") == InputSpec.square(48, 1)
    assert parse_input_spec({"size": 32, "channels": 3, "color": "bgr"}, "x").color == "bgr"
    full = InputSpec.square(40, 3).to_json()
    assert parse_input_spec(full, "x") == InputSpec.square(40, 3)
    for bad, field in (
        ({**full, "color": "hsv"}, "input.color"),
        ({**full, "std": [0.0]}, "input.std"),
        ({**full, "mean": [1, 2]}, "input.mean"),
        ({"size": 48, "chanels": 1}, "unknown keys"),
        ({"size": 48, "channels": 2}, "input.channels"),
        ([48, 48], "must be an object"),
    ):
        with pytest.raises(ConfigError, match=r"invalid input spec \(--spec s.json\): .*" + field.replace(".", r"\.")):
            parse_input_spec(bad, "--spec s.json")
    with pytest.raises(ConfigError, match="input.channels"):
        InputSpec((48, 48), 3, "gray")
