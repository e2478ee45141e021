"""Helpers shared by the samples: model options, an annotated-video writer, a caption per face."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a source checkout without `pip install ofer`
    sys.path.insert(0, str(ROOT))


def add_model_args(p: argparse.ArgumentParser) -> None:
    """``--bundle``, ``--backend``, ``--pipeline``, ``--threads``."""
    p.add_argument("--bundle", default=None, help="bundle folder (default: the bundle shipped with ofer)")
    p.add_argument("--backend", default="auto", help="auto | tensorrt | onnxruntime | onnxruntime-cpu | ...")
    p.add_argument("--pipeline", default="auto", choices=("auto", "direct", "inpaint"))
    p.add_argument("--threads", type=int, default=None, help="CPU threads per engine")


def checked_outputs(force: bool, inputs: Sequence[str], **paths: str | None) -> dict[str, Path | None]:
    """Check every output before the first frame, by the rules of the ``ofer`` CLI: not an input, not existing
    unless ``--force``, distinct, writable, and ``--out`` a video name. Exits with one line and code 2 otherwise."""
    from runtime.errors import OferError
    from sdk.cli.args import distinct_outputs, make_parent, output_path

    try:
        out = {k: output_path(v, force, f"--{k}", suffixes=(".avi", ".mp4") if k == "out" else None,
                              inputs=[i for i in inputs if Path(i).exists()])
               for k, v in paths.items()}
        distinct_outputs(**out)
    except OferError as exc:
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for p in out.values():
        if p is not None:
            make_parent(p)
    return out


def annotate(frame: Any, predictions: Sequence[Any]) -> Any:
    """Boxes, labels and score bars, plus the pipeline and occlusion of each face above its box."""
    import cv2

    from runtime.draw import draw_predictions

    out = draw_predictions(frame, predictions)
    for p in predictions:
        x1, y1 = int(p.box[0]), int(p.box[1])
        occ = "" if p.occlusion is None else f" occl {p.occlusion:.0%}"
        cv2.putText(out, f"{p.pipeline}{occ}", (x1, max(12, y1 - 24)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 255, 255), 1, cv2.LINE_AA)
    return out


class VideoOut:
    """Annotated frames to ``.avi`` (MJPG) or ``.mp4`` (mp4v), opened on the first frame."""

    def __init__(self, path: str | Path, fps: float | None) -> None:
        self.path, self.fps, self.writer, self.frames = Path(path), fps or 25.0, None, 0
        if self.path.suffix.lower() not in (".avi", ".mp4"):
            raise SystemExit(f"{self.path}: use .avi or .mp4 for the annotated video")

    def write(self, image: Any) -> None:
        import cv2

        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (image.shape[1], image.shape[0]))
            if not self.writer.isOpened():
                raise SystemExit(f"OpenCV cannot write {self.path}")
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def display_available() -> bool:
    """Whether an OpenCV window can be shown (a display and a GUI build of OpenCV)."""
    import os

    import cv2

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow("ofer-probe")
        cv2.destroyWindow("ofer-probe")
        return True
    except cv2.error:  # opencv-python-headless has no GUI
        return False
