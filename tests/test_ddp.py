"""Data-parallel training: two real processes under torchrun (gloo on CPU) end with identical weights."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path

    import torch
    from safetensors.torch import save_file

    from tests.test_training import make_trainer, tiny_config

    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    trainer = make_trainer(tiny_config("gan-inpaint", max_steps=3), out)
    init = {f"{n}.{k}": v.clone() for n, m in trainer.models.items() for k, v in m.state_dict().items()}
    trainer.fit()
    rank = trainer.dist.rank
    assert trainer.dist.world_size == 2
    final = {f"{n}.{k}": v.contiguous() for n, m in trainer.models.items() for k, v in m.state_dict().items()}
    save_file(init, str(out / f"init{rank}.safetensors"))
    save_file(final, str(out / f"rank{rank}.safetensors"))
""")


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_two_gloo_ranks_end_with_identical_weights(tmp_path: Path) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    w0, w1 = load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))
    i0 = load_file(str(out / "init0.safetensors"))
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)  # params and BN buffers
    assert all(torch.equal(i0[k], v) for k, v in load_file(str(out / "init1.safetensors")).items())
    changed = [k for k in w0 if k.startswith(("generator.", "discriminator.")) and not torch.equal(w0[k], i0[k])]
    assert any(k.startswith("generator.") for k in changed) and any(k.startswith("discriminator.") for k in changed)
    assert (out / "checkpoint" / "config.json").exists() and (out / "train_log.csv").exists()
    rows = (out / "train_log.csv").read_text().splitlines()
    # 32 samples split over 2 ranks in batches of 8: 2 steps per (1-epoch) stage, logged once (rank 0 only)
    assert len(rows) == 1 + 2 + 2
