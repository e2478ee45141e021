"""Training and distillation on a CUDA GPU: the device chosen by ``auto``, mixed precision and channels-last, and
checkpoints that move between a GPU machine and a CPU-only one. Skipped where torch sees no GPU; the other training
tests (test_training, test_distill, test_checkpoint_to_bundle) also run on the GPU there, since ``auto`` picks it."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU that torch can see")

from tests.test_training import make_trainer, tiny_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_auto_device_trains_on_the_gpu_with_mixed_precision() -> None:
    t = make_trainer(tiny_config("baseline", max_steps=4))
    assert t.device.type == "cuda" and t.use_amp and t.channels_last
    assert t.amp_dtype == (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    before = [p.detach().clone() for p in t.models["classifier"].parameters()]
    t.fit()
    after = list(t.models["classifier"].parameters())
    assert all(p.device.type == "cuda" for p in after)
    assert any(not torch.equal(a.detach(), b) for a, b in zip(after, before))
    for row in t.rows:
        assert all(math.isfinite(v) for k, v in row.items() if k not in ("stage", "epoch", "step")), row


def test_gpu_checkpoint_predicts_the_same_in_a_process_without_gpu(tmp_path: Path) -> None:
    t = make_trainer(tiny_config("baseline", max_steps=3), tmp_path)
    t.fit()
    x = np.random.default_rng(0).standard_normal((4, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    model = t.models["classifier"].eval()
    with torch.no_grad():
        on_gpu = model(torch.from_numpy(x).cuda()).float().cpu().numpy()
    code = (
        "import numpy as np, torch\n"
        "from sdk.training.checkpoint import load_checkpoint\n"
        "assert not torch.cuda.is_available()\n"
        f"m = load_checkpoint({str(tmp_path)!r}).models['classifier'].eval()\n"
        f"x = torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))\n"
        "with torch.no_grad():\n"
        f"    np.save({str(tmp_path / 'cpu.npy')!r}, m(x).numpy())\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    on_cpu = np.load(tmp_path / "cpu.npy")
    # cuDNN may use TF32 for convolutions: agreement to ~1e-3 of the logits' scale, same top-1
    assert np.abs(on_cpu - on_gpu).max() <= 1e-2 * max(1.0, np.abs(on_cpu).max()), (on_cpu, on_gpu)
    assert (on_cpu.argmax(1) == on_gpu.argmax(1)).all()


def test_cpu_checkpoint_resumes_on_the_gpu(tmp_path: Path) -> None:
    kw = dict(epochs=2, max_steps=None)
    first = make_trainer(tiny_config("baseline", device="cpu", **kw), tmp_path)
    first.fit(stop_after_epochs=1)
    resumed = make_trainer(tiny_config("baseline", device="cuda", **kw), tmp_path)
    result = resumed.fit(resume_from=tmp_path / "checkpoint")
    assert result["position"]["stage"] == 1  # both epochs done
    assert all(p.device.type == "cuda" for p in resumed.models["classifier"].parameters())
    assert [int(r["epoch"]) for r in resumed.report.rows] == [1, 2]


def test_distill_runs_on_the_gpu_and_exports_on_the_cpu(media_dir: Path, tmp_path: Path, ofer_cmd: list[str]) -> None:
    spec = f"faces:{media_dir / 'single_face.mp4'},{media_dir / 'multi_face.jpg'},stride=6"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OFER_CACHE": str(tmp_path / "cache")}
    r = subprocess.run(
        [
            *ofer_cmd,
            "distill",
            "--data",
            spec,
            "--out",
            str(tmp_path / "d"),
            "--epochs",
            "2",
            "--steps",
            "3",
            "--batch-size",
            "16",
            "--workers",
            "2",
            "--device",
            "cuda",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert "epoch 2/2" in r.stdout
    from sdk.training.checkpoint import load_checkpoint

    ck = load_checkpoint(tmp_path / "d" / "state")
    assert ck.config["distill_config"]["device"] == "cuda"
    assert all(v.device.type == "cpu" for v in ck.models["student"].state_dict().values())
