"""INT8 of the default model on real occluded faces: calibration domain, per-flavour outcome, sensitivity fallback."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.bundle import load_bundle
from runtime.errors import ExportError

from .conftest import load_real_faces_module, real_face_sources

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "sdk" / "default_bundle"


@pytest.fixture(scope="module")
def real_folders(tmp_path_factory):
    """Real photos with faces, tune split (calibration) and report split (held-out): other people."""
    import cv2

    rf = load_real_faces_module()
    root = tmp_path_factory.mktemp("real")
    for split in ("tune", "report"):
        (root / split).mkdir()
        for k, im in enumerate(rf.load_real_images(split, sources=real_face_sources())):
            if im.faces:
                cv2.imwrite(str(root / split / f"{k:03d}.png"), im.image)
    return root / "tune", root / "report"


def test_calibration_domain_follows_the_model():
    from export.int8 import check_calibration_domain, model_domain

    real = load_bundle(DEFAULT).provenance
    assert model_domain(real) == "real" and model_domain({"data": "procedural:n=6000"}) == "procedural"
    with pytest.raises(ExportError, match="real faces"):
        check_calibration_domain(None, real)
    with pytest.raises(ExportError, match="--allow-domain-mismatch"):
        check_calibration_domain("procedural", real)
    assert check_calibration_domain("procedural", real, allow_mismatch=True) == "procedural"
    assert check_calibration_domain(None, {"data": "procedural"}) == "procedural"


def test_default_model_int8_on_real_occluded_faces(real_folders, tmp_path):
    """Both flavours judged on their own on other people's occluded faces; a flavour below the gate gets the
    sensitivity fallback (nodes kept in float, recorded) and, if it still fails, is left out and reported."""
    from export.bundle_writer import export_bundle
    from export.formats import parse_precisions

    tune, report = real_folders
    src = load_bundle(DEFAULT)
    bundle = export_bundle(src.engine_path("classifier"), tmp_path / "b", labels=src.labels, input_spec=src.input,
                           formats=parse_precisions("fp16,int8"), calib_source=str(tune), heldout_source=str(report),
                           calib_count=96, heldout_count=24, provenance=src.provenance, max_float_nodes=4,
                           files=[src.path / f for f in src.licence_files()], cache_dir=tmp_path / "cache",
                           calib_note="research-use-only media")
    rec = bundle.provenance["metrics"]["export"]
    assert rec["fp16"]["passed"] and "classifier-fp16" in bundle.engines  # FP16 is kept whatever INT8 does
    assert rec["calibration"]["domain"] == "real" and rec["calibration"]["note"] == "research-use-only media"
    assert rec["heldout"]["source"] == str(report) and "headset" in rec["heldout"]["per_protocol"]
    assert {"headset", "mask"} <= set(rec["calibration"]["per_protocol"])  # realistic occluders in the mix
    for key in ("int8-cpu", "int8-trt"):
        r = rec[key]
        assert rec["outcome"][key] == ("passed" if r["top1_agreement"] >= 0.98 else "failed")
        assert (f"classifier-{key}" in bundle.engines) == r["passed"]
        assert 0.85 <= r["top1_agreement"] <= 1.0  # a broken quantisation lands near chance
        if r["passed"]:
            q = bundle.engines[f"classifier-{key}"].extra["quantization"]
            assert q["excluded_nodes"] == r["excluded_nodes"] and len(q["excluded_nodes"]) <= 4
        else:
            assert len(r["excluded_nodes"]) == 4 and "--max-float-nodes" in r["failure"]
            assert "--calib-method" not in r["failure"]  # no round of calibration methods
    # The fallback really helps: keeping nodes in float never lowers agreement below the all-INT8 model's.
    for key in ("int8-cpu", "int8-trt"):
        r = rec[key]
        if r["excluded_nodes"]:
            assert r["top1_agreement"] >= 0.9


def test_sensitivity_ranking_finds_the_noisy_node(tmp_path):
    """rank_nodes puts first the node whose quantisation alone costs most (here: a planted huge-error node)."""
    from export.sensitivity import rank_nodes

    costs = {"a": 0.01, "b": 0.5, "c": 0.1}

    def quantize(dst: Path, exclude: list[str]) -> None:
        dst.write_text(",".join(n for n in costs if n not in exclude))

    def run(path: Path, x: np.ndarray) -> np.ndarray:
        quantised = [n for n in path.read_text().split(",") if n]
        return x + sum(costs[n] for n in quantised)

    x = np.zeros((4, 3), np.float32)
    ranking = rank_nodes(quantize, run, list(costs), x, x, tmp_path)
    assert [n for n, _ in ranking] == ["b", "c", "a"]
    assert ranking[0][1] == pytest.approx(0.5)
