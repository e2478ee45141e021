"""``ofer export`` end to end on the real default model: FP16 + INT8 bundle, agreement gate, overwrite refusal."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from runtime.bundle import load_bundle

ROOT = Path(__file__).resolve().parents[1]


def _export(ofer_cmd, out: Path, media_dir: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        *ofer_cmd,
        "export",
        str(ROOT / "sdk" / "default_bundle"),
        "--out",
        str(out),
        "--precision",
        "fp16,int8",
        "--calib",
        str(media_dir / "WolfgangLanger_Pexels.mp4"),
        "--calib-count",
        "64",
        "--heldout-count",
        "12",
        "--max-float-nodes",
        "0",
        *extra,
    ]
    env = {**os.environ, "OFER_CACHE": str(cache)}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)


def test_export_writes_a_verified_int8_bundle_and_guards_it(ofer_cmd, media_dir, tmp_path):
    pytest.importorskip("runtime.occlusion")
    out = tmp_path / "bundle"
    res = _export(ofer_cmd, out, media_dir, tmp_path / "cache", "--agreement", "0.85")
    assert res.returncode == 0, res.stderr
    bundle = load_bundle(out)  # sha256 of every file verified
    names = list(bundle.engines)
    assert names == ["classifier", "classifier-fp16", "classifier-int8-cpu", "classifier-int8-trt"]
    assert [bundle.engines[n].precision for n in names] == ["fp32", "fp16", "int8", "int8"]
    report = bundle.provenance["metrics"]["export"]
    assert report["heldout"]["n"] == 12 * 21  # every held-out face under every standard and realistic protocol
    for key in ("fp16", "int8-cpu", "int8-trt"):
        assert 0.85 <= report[key]["top1_agreement"] <= 1.0
        assert "upper_half" in report[key]["per_protocol"]
    assert bundle.engines["classifier-int8-trt"].extra["quantization"]["symmetric_activations"] is True
    cache = bundle.manifest["trt_calibration_cache"]
    text = (out / cache["file"]).read_text()
    assert text.startswith("TRT-100300-MinMaxCalibration\n") and "\ninput: " in text
    # The runtime takes the first int8 engine: the CPU flavour, which ONNX Runtime actually runs.
    from runtime.backends import open_engine, select_engine

    engine = open_engine(
        bundle,
        select_engine(bundle, "classifier", backend="onnxruntime-cpu", precision="int8"),
        backend="onnxruntime-cpu",
        threads=1,
    )
    assert engine.path.name == "classifier.int8-cpu.onnx"

    again = _export(ofer_cmd, out, media_dir, tmp_path / "cache")
    assert again.returncode == 2 and "--force" in again.stderr
    before = json.loads((out / "manifest.json").read_text())
    strict = _export(ofer_cmd, out, media_dir, tmp_path / "cache", "--agreement", "1.01", "--force")
    assert strict.returncode == 2
    assert "top-1 agreement" in strict.stderr and "nothing written" in strict.stderr
    assert json.loads((out / "manifest.json").read_text()) == before  # a failed export leaves the bundle alone

    (out / cache["file"]).write_text(text.replace("input: ", "input: 4", 1))  # tampered scales
    tampered = subprocess.run(
        [*ofer_cmd, "build-engines", str(out), "--precision", "int8"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert tampered.returncode == 2 and f"integrity check: {cache['file']!r}" in tampered.stderr


def test_export_needs_calibration_faces_for_int8(ofer_cmd, tmp_path):
    res = subprocess.run(
        [
            *ofer_cmd,
            "export",
            str(ROOT / "sdk" / "default_bundle"),
            "--out",
            str(tmp_path / "b"),
            "--precision",
            "int8-cpu",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == 2 and "--calib" in res.stderr
    assert not (tmp_path / "b").exists()


def test_export_from_onnx_and_spec_file(ofer_cmd, tmp_path):
    """An ONNX classifier plus a JSON spec (labels + input) is enough; FP16 is checked on procedural faces."""
    manifest = json.loads((ROOT / "sdk" / "default_bundle" / "manifest.json").read_text())
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"labels": manifest["labels"], "input": manifest["input"]}))
    onnx_path = ROOT / "sdk" / "default_bundle" / "classifier.onnx"
    cmd = [
        *ofer_cmd,
        "export",
        str(onnx_path),
        "--out",
        str(tmp_path / "b"),
        "--precision",
        "fp16",
        "--heldout-count",
        "8",
    ]
    res = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "OFER_CACHE": str(tmp_path / "cache")},
    )
    assert res.returncode == 2 and "--spec" in res.stderr  # an ONNX file alone has no labels
    res = subprocess.run(
        [*cmd, "--spec", str(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "OFER_CACHE": str(tmp_path / "cache")},
    )
    assert res.returncode == 0, res.stderr
    bundle = load_bundle(tmp_path / "b")
    assert list(bundle.engines) == ["classifier", "classifier-fp16"] and bundle.labels == tuple(manifest["labels"])
    report = bundle.provenance["metrics"]["export"]
    assert report["heldout"]["source"] == "procedural" and report["fp16"]["top1_agreement"] >= 0.97
    assert "trt_calibration_cache" not in bundle.manifest
    info = subprocess.run([*ofer_cmd, "info", str(tmp_path / "b")], capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    lines = info.stdout.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["precision", "status"])
    head, fp32, fp16 = lines[header : header + 3]
    end = head.index("agreement") + len("agreement")  # numbers are right-aligned under their header
    assert fp32[:end].endswith("1.0000") and fp16.split()[:3] == ["fp16", "in", "bundle"]
    assert fp16[:end].rstrip()[-6:].replace(".", "").isdigit() and len(fp16[:end]) == end
    assert any(ln.startswith("agreement with FP32 per protocol") for ln in lines)
    assert any(ln.split()[:1] == ["headset"] for ln in lines)  # realistic occluders in the held-out protocols


def test_inpainter_of_another_size_is_one_clear_error(ofer_cmd, tmp_path):
    """A 32x32 inpainter before the default 64x64 classifier: refused before any calibration, one line, no bundle."""
    torch = pytest.importorskip("torch")
    import numpy as np

    from export.onnx import export_onnx
    from sdk.training.models import create_model

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    sample = {
        "image": rng.normal(0, 0.5, (2, 1, 32, 32)).astype(np.float32),
        "mask": (rng.random((2, 1, 32, 32)) > 0.5).astype(np.float32),
    }
    export_onnx(
        create_model("inpainter", in_channels=1, width=8, depth=2),
        sample,
        tmp_path / "inp32.onnx",
        output_names=("inpainted",),
        atol=1e-3,
    )
    res = subprocess.run(
        [
            *ofer_cmd,
            "export",
            str(tmp_path / "inp32.onnx"),
            str(ROOT / "sdk" / "default_bundle"),
            "--out",
            str(tmp_path / "b"),
            "--precision",
            "fp16",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "OFER_CACHE": str(tmp_path / "cache")},
    )
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "inpainter inp32.onnx" in res.stderr and "[64, 64]" in res.stderr
    assert not (tmp_path / "b").exists()


def test_export_inpainter_and_classifier_pair(ofer_cmd, tmp_path):
    """INPAINTER.onnx + CLASSIFIER: the bundle gets both engines and the inpaint/auto pipelines, and they load."""
    torch = pytest.importorskip("torch")
    import numpy as np

    from export.onnx import export_onnx
    from sdk.training.models import create_model

    torch.manual_seed(0)
    inpainter = create_model("inpainter", in_channels=1, width=8, depth=2)
    rng = np.random.default_rng(0)
    sample = {
        "image": rng.normal(0, 0.5, (2, 1, 64, 64)).astype(np.float32),
        "mask": (rng.random((2, 1, 64, 64)) > 0.5).astype(np.float32),
    }
    export_onnx(inpainter, sample, tmp_path / "inpainter.onnx", output_names=("inpainted",), atol=1e-3)
    res = subprocess.run(
        [
            *ofer_cmd,
            "export",
            str(tmp_path / "inpainter.onnx"),
            str(ROOT / "sdk" / "default_bundle"),
            "--out",
            str(tmp_path / "b"),
            "--precision",
            "fp16",
            "--heldout-count",
            "6",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "OFER_CACHE": str(tmp_path / "cache")},
    )
    assert res.returncode == 0, res.stderr
    bundle = load_bundle(tmp_path / "b")
    assert bundle.engines["inpainter"].role == "inpainter" and bundle.engines["inpainter"].output == "image"
    # FP16 for the inpainter too, judged on the whole pipeline (inpainter + classifier) against the FP32 pipeline
    assert bundle.engines["inpainter-fp16"].precision == "fp16" and bundle.engines["inpainter-fp16"].role == "inpainter"
    record = bundle.provenance["metrics"]["export"]["fp16"]
    assert record["pipeline"]["passed"] and record["pipeline"]["n"] == 6 * 21
    assert record["pipeline"]["top1_agreement"] >= 0.98
    assert set(bundle.pipelines) == {"direct", "inpaint", "auto"}
    from sdk import Recognizer

    rec = Recognizer(tmp_path / "b", detector="none", pipeline="inpaint", threads=1)
    face = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    assert len(rec.predict(face)) == 1


def test_instance_norm_exports_without_the_train_mode_warning(tmp_path):
    """The inpainter's InstanceNorm has no running statistics: eval mode normalises per image, as exported; the
    exporter's warning about it would only alarm users (parity is checked instead)."""
    torch = pytest.importorskip("torch")
    import warnings

    import numpy as np

    from export.onnx import export_onnx

    m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.InstanceNorm2d(4)).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_onnx(m, np.random.default_rng(0).normal(size=(2, 1, 16, 16)).astype(np.float32), tmp_path / "m.onnx")
    assert not [w for w in caught if "instance_norm" in str(w.message)]
