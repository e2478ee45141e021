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
        out = {
            k: output_path(
                v,
                force,
                f"--{k}",
                suffixes=(".avi", ".mp4") if k == "out" else None,
                inputs=[i for i in inputs if Path(i).exists()],
            )
            for k, v in paths.items()
        }
        distinct_outputs(**out)
    except OferError as exc:
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for p in out.values():
        if p is not None:
            make_parent(p)
    return out


def annotate(frame: Any, predictions: Sequence[Any]) -> Any:
    """Boxes, track ids, labels, pipeline, occlusion and score bars (:func:`runtime.draw.draw_predictions`)."""
    from runtime.draw import draw_predictions

    return draw_predictions(frame, predictions)


class VideoOut:
    """Annotated frames to ``.avi`` (MJPG) or ``.mp4`` (H.264 when OpenCV/PyAV can write it, else mp4v)."""

    def __init__(self, path: str | Path, fps: float | None) -> None:
        from runtime.errors import InputError
        from runtime.video_writer import VideoWriter

        try:
            self.writer = VideoWriter(path, fps)
        except InputError as exc:
            raise SystemExit(str(exc)) from None
        self.path = Path(path)

    @property
    def frames(self) -> int:
        return self.writer.frames

    @property
    def codec(self) -> str | None:
        """The codec used (``avc1`` = H.264, ``mp4v``, ``MJPG``)."""
        return self.writer.codec

    def write(self, image: Any) -> None:
        self.writer.write(image)

    def close(self) -> None:
        self.writer.close()


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
