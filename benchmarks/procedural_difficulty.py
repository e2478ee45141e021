"""Is the procedural benchmark hard in the right way? Train a small CNN on clean faces, test under occlusion.

Trains on ``--train`` clean training-split faces (gray, ``--size`` px) for ``--epochs`` on one CPU thread, then
evaluates on test-split faces (disjoint identities) under clean / upper_half / eyes / mouth / lower_half.
Acceptance: clean accuracy high but not trivial (80-95 %), upper_half at least 15 points below clean, and the
mouth protocols below clean too. Prints a table and writes JSON.

With ``--train-protocols clean,upper_half,...`` every training batch is occluded with one protocol drawn from
the list (a control: an occlusion-aware model shows how much of the drop is lost information rather than
distribution shift).

Usage:
    nice python benchmarks/procedural_difficulty.py [--train 14000] [--test 2800] [--epochs 8]
        [--train-protocols clean,upper_half,lower_half,eyes,mouth]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from runtime.occlusion import apply_batch  # noqa: E402
from runtime.datasets.procedural import ProceduralFaces  # noqa: E402

PROTOCOLS = ("clean", "upper_half", "eyes", "mouth", "lower_half", "upper_half@gray", "mouth@gray", "random_box:0.3")


def small_cnn(n_classes: int) -> nn.Module:
    """Four 3x3 conv blocks (16-32-64-64) with BN and pooling, then a 128-unit head (~7 MMAC at 48 px)."""

    def block(cin: int, cout: int, pool: bool) -> list[nn.Module]:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        return layers + ([nn.MaxPool2d(2)] if pool else [])

    return nn.Sequential(
        *block(1, 16, True),
        *block(16, 32, True),
        *block(32, 64, True),
        *block(64, 64, False),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.LazyLinear(128),
        nn.ReLU(),
        nn.Linear(128, n_classes),
    )


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float().div_(255.0).sub_(0.5).unsqueeze(1)


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, n_classes: int) -> dict:
    """Accuracy and the confusion matrix (rows = true)."""
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(to_tensor(images[i : i + 512])).argmax(1) for i in range(0, len(images), 512)]).numpy()
    conf = np.zeros((n_classes, n_classes), int)
    np.add.at(conf, (labels, pred), 1)
    return {"accuracy": float((pred == labels).mean()), "confusion": conf.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=14000)
    parser.add_argument("--test", type=int, default=2800)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label-noise", type=float, default=0.0)
    parser.add_argument("--train-protocols", default="clean")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/procedural_difficulty.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    train = ProceduralFaces(
        args.train, size=args.size, seed=args.seed, split="train", color=False, label_noise=args.label_noise
    )
    test = ProceduralFaces(args.test, size=args.size, seed=args.seed, split="test", color=False)
    x_train, y_train = train.render_batch(range(len(train)))
    x_test, y_test = test.render_batch(range(len(test)))
    t_render = time.perf_counter() - t0
    n_classes = len(train.labels)
    model = small_cnn(n_classes)
    model(to_tensor(x_train[:2]))  # materialise the lazy layer
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = args.epochs * (len(x_train) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    rng = np.random.default_rng(args.seed)
    train_specs = [s.strip() for s in args.train_protocols.split(",") if s.strip()]
    t1 = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(x_train))
        losses = []
        for b in range(len(x_train) // 128):
            idx = order[b * 128 : (b + 1) * 128]
            xb = x_train[idx]
            flip = rng.random(len(idx)) < 0.5
            xb[flip] = xb[flip, :, ::-1]
            spec = train_specs[int(rng.integers(len(train_specs)))]
            xb = apply_batch(xb, spec, seed=epoch * 100_000 + b).image
            loss = nn.functional.cross_entropy(model(to_tensor(xb)), torch.from_numpy(y_train[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        acc = evaluate(model, x_test, y_test, n_classes)["accuracy"]
        print(
            f"epoch {epoch + 1}/{args.epochs}  loss {np.mean(losses):.3f}  clean test acc {acc:.3f}  "
            f"({time.perf_counter() - t1:.0f} s)",
            flush=True,
        )
    t_train = time.perf_counter() - t1
    results = {}
    for spec in PROTOCOLS:
        occluded = apply_batch(x_test, spec, seed=args.seed).image
        results[spec] = evaluate(model, occluded, y_test, n_classes)
    clean = results["clean"]["accuracy"]
    print(f"\n{'protocol':<16} {'accuracy':>9} {'drop (pts)':>11}")
    for spec, r in results.items():
        print(f"{spec:<16} {100 * r['accuracy']:>8.1f}% {100 * (clean - r['accuracy']):>11.1f}")
    print("\nper-class accuracy (rows) under each protocol:")
    print(f"{'':<10}" + "".join(f"{s[:11]:>12}" for s in results))
    for c, name in enumerate(train.labels):
        row = [np.array(r["confusion"])[c] for r in results.values()]
        print(f"{name:<10}" + "".join(f"{100 * rr[c] / max(rr.sum(), 1):>11.1f}%" for rr in row))
    ok = {
        "clean_in_80_95": 0.80 <= clean <= 0.95,
        "upper_half_drop_ge_15": clean - results["upper_half"]["accuracy"] >= 0.15,
        "mouth_drop_gt_0": clean - results["mouth"]["accuracy"] > 0.0,
    }
    print("\nacceptance:", ok)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "config": vars(args) | {"out": str(args.out)},
                "labels": list(train.labels),
                "render_s": t_render,
                "train_s": t_train,
                "results": results,
                "acceptance": ok,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
