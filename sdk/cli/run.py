"""``ofer run SOURCE``: recognise expressions in an image, a folder, a video or a camera."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from runtime.errors import InputError

from .args import add_recognizer_args, output_path, recognizer_from_args
from .progress import progress


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="recognise expressions in an image, folder, video or camera",
                       description="Prints one JSON line per face per frame (frame, time, box, label, scores).")
    p.add_argument("source", help="image file, folder of images, video file, or camera index (e.g. 0)")
    p.add_argument("--jsonl", default=None, help="write the JSON lines to this file instead of stdout")
    p.add_argument("--out", default=None,
                   help="write the annotated image (image source), folder of images (folder source) or video "
                        "(.avi MJPG or .mp4 mp4v) here")
    p.add_argument("--force", action="store_true", help="overwrite existing --out/--jsonl files")
    p.add_argument("--limit", type=int, default=None, help="stop after this many frames")
    p.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                   help="progress bar on stderr (auto: when stderr is a terminal and the source is a file)")
    add_recognizer_args(p)
    p.set_defaults(func=run)


class _Writer:
    """Writes annotated frames to an image, a folder of images or a video, according to the source."""

    def __init__(self, path: Path | None, kind: str, fps: float | None, force: bool) -> None:
        self.path, self.kind, self.fps, self.force = path, kind, fps or 25.0, force
        self.video: Any = None

    def write(self, frame_name: str, image: Any) -> None:
        import cv2

        if self.path is None:
            return
        if self.kind == "image":
            if not cv2.imwrite(str(self.path), image):
                raise InputError(f"could not write {self.path}; use an image extension such as .jpg or .png")
        elif self.kind == "folder":
            self.path.mkdir(parents=True, exist_ok=True)
            target = self.path / frame_name
            if target.exists() and not self.force:
                raise InputError(f"{target} already exists; pass --force to overwrite")
            cv2.imwrite(str(target), image)
        else:
            if self.video is None:
                suffix = self.path.suffix.lower()
                fourcc = {".avi": "MJPG", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v"}.get(suffix)
                if fourcc is None:
                    raise InputError(f"--out {self.path}: use .avi (MJPG) or .mp4 (mp4v) for annotated video")
                h, w = image.shape[:2]
                self.video = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), self.fps, (w, h))
                if not self.video.isOpened():
                    raise InputError(f"OpenCV could not open a {fourcc} video writer for {self.path}")
            self.video.write(image)

    def close(self) -> None:
        if self.video is not None:
            self.video.release()


def _check_out(path: str | None, kind: str, force: bool) -> Path | None:
    if path is None:
        return None
    if kind == "folder":
        p = Path(path)
        if p.exists() and not p.is_dir():
            raise InputError(f"--out {p} must be a folder for a folder source")
        return p
    return output_path(path, force, "--out")


def run(args: argparse.Namespace) -> int:
    from runtime.draw import draw_predictions
    from runtime.sources import open_source

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    jsonl = output_path(args.jsonl, args.force, "--jsonl")
    source = open_source(args.source)
    recognizer = recognizer_from_args(args)
    out_path = _check_out(args.out, source.kind, args.force)
    writer = _Writer(out_path, source.kind, source.fps, args.force)
    show = args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty()
                                     and source.kind in ("video", "folder"))
    stream: TextIO = open(jsonl, "w", encoding="utf-8") if jsonl else sys.stdout
    n_frames = n_faces = 0
    try:
        total = min(source.length, args.limit) if source.length and args.limit else source.length or args.limit
        for frame in progress(source, total, "ofer run", enabled=show):
            if args.limit is not None and n_frames >= args.limit:
                break
            preds = recognizer.predict(frame.image)
            n_frames += 1
            for face, p in enumerate(preds):
                n_faces += 1
                record = {"frame": frame.index, "time": round(frame.time, 4), "name": frame.name, "face": face,
                          **p.to_dict()}
                stream.write(json.dumps(record) + "\n")
            if out_path is not None:
                writer.write(frame.name, draw_predictions(frame.image, preds))
        stream.flush()
    finally:
        source.close()
        writer.close()
        if jsonl:
            stream.close()
    print(f"ofer run: {n_frames} frames, {n_faces} faces"
          + (f"; annotated output in {out_path}" if out_path else ""), file=sys.stderr)
    return 0
