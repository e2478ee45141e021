"""What a bundle is exported from: FP32 ONNX models plus their labels, input spec, provenance and licence files.

:class:`ExportSource` comes from an existing bundle (:func:`source_from_bundle`: its FP32 models re-exported, with
its provenance and licence files), from an ONNX classifier and a spec file (:func:`source_from_onnx`), or from a
training checkpoint (:func:`export.modules.checkpoint_to_onnx`); :func:`export.bundle_writer.export_bundle` takes it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.input_spec import InputSpec
from runtime.errors import ExportError, InputError


@dataclass(frozen=True)
class ExportSource:
    """FP32 ONNX models and what the bundle records about them.

    Attributes:
        classifier: FP32 ONNX classifier.
        labels: Class names in the classifier's output order.
        input_spec: The model input (size, channels, layout, normalisation, crop geometry).
        inpainter: Optional FP32 ONNX inpainter (the bundle gets the inpaint/auto pipelines).
        provenance: Manifest provenance (export metrics are added to it).
        files: Other files the bundle carries, e.g. the licence texts ``provenance.licence_file`` names.
        parity: ONNX-vs-PyTorch parity of the conversion (``{role: export_onnx info}``), recorded; ``None``: not
            converted here.
    """

    classifier: Path
    labels: tuple[str, ...]
    input_spec: InputSpec
    inpainter: Path | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    parity: dict[str, Any] | None = None

    def with_inpainter(self, inpainter: str | Path) -> ExportSource:
        """The same source with ``inpainter`` (an FP32 ONNX file) as its inpainter."""
        return dataclasses.replace(self, inpainter=Path(inpainter))


def source_from_bundle(path: str | Path, work: str | Path) -> ExportSource:
    """A bundle's FP32 models as the bytes that passed its sha256 check (written to ``work``), its provenance (plus
    ``exported_from``: the source bundle's name and classifier sha256) and its licence files.

    Raises:
        InputError: the bundle has no FP32 ONNX classifier.
        BundleError: the bundle does not load (see :func:`runtime.bundle.load_bundle`).
    """
    from runtime.bundle import load_bundle

    b = load_bundle(path)
    clf = b.find_engines("classifier", format="onnx", precision="fp32")
    if not clf:
        raise InputError(f"bundle {path} has no FP32 ONNX classifier to export from")
    inp = b.find_engines("inpainter", format="onnx", precision="fp32")
    models = {}
    for role, specs in (("classifier", clf), ("inpainter", inp)):
        if specs:
            models[role] = Path(work) / f"source-{role}.onnx"
            models[role].write_bytes(b.read_engine(specs[0].name))  # the checked bytes, not a re-read by path
    provenance = dict(b.provenance)
    provenance["exported_from"] = {"bundle": b.name, "classifier_sha256": clf[0].sha256}
    return ExportSource(
        models["classifier"],
        tuple(b.labels),
        b.input,
        inpainter=models.get("inpainter"),
        provenance=provenance,
        files=tuple(b.path / f for f in b.licence_files()),
    )


def source_from_onnx(path: str | Path, spec_file: str | Path | None) -> ExportSource:
    """An ONNX classifier with a spec file: JSON with ``labels`` and ``input`` (the bundle schema's sections).

    Raises:
        InputError: no spec file, or it is not such a JSON object.
    """
    from runtime.input_spec import parse_input_spec

    path = Path(path)
    if spec_file is None:
        raise InputError(
            f"{path.name} is an ONNX file: pass --spec SPEC.json with its 'labels' and 'input' "
            "(see the bundle schema in runtime/bundle.py)"
        )
    try:
        spec = json.loads(Path(spec_file).read_text())
        labels, section = list(spec["labels"]), spec["input"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"--spec {spec_file} must be a JSON object with 'labels' and 'input' ({exc})") from None
    return ExportSource(path, tuple(labels), parse_input_spec(section, f"--spec {spec_file}"))


def self_contained(onnx_path: Path, work: Path) -> Path:
    """``onnx_path``, or a copy in ``work`` with its external data inlined: a bundle engine is one file, covered by
    one sha256 (loading refuses external data). Models over protobuf's 2 GB limit cannot be inlined.

    Raises:
        ExportError: The external data cannot be read or the model is too large for one file.
    """
    from runtime.onnx_info import read_onnx_info

    if not read_onnx_info(onnx_path.read_bytes(), str(onnx_path)).external:
        return onnx_path
    import onnx

    dest = work / f"inlined-{onnx_path.name}"
    try:
        onnx.save(onnx.load(str(onnx_path)), str(dest))  # load() reads the external files; save() writes one file
    except Exception as exc:  # onnx raises ValueError/OSError/protobuf errors
        raise ExportError(
            f"cannot inline the external data of {onnx_path} ({str(exc).splitlines()[0]}); ofer "
            "bundles hold self-contained ONNX files (at most 2 GB)"
        ) from None
    return dest
