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
    s = p.add_argument_group("stream")
    s.add_argument("--mode", choices=("auto", "offline", "realtime"), default="auto",
                   help="offline: every frame in order; realtime: drop stale frames, never lag (auto: realtime for "
                        "cameras, offline for files)")
    s.add_argument("--smooth", default=None, help="per-face smoothing over time: ema:ALPHA (e.g. ema:0.5) or "
                                                  "window:N (e.g. window:5)")
    s.add_argument("--max-missed", type=int, default=15,
                   help="frames a face may go undetected and keep its track id")
    s.add_argument("--csv", default=None,
                   help="write a time series per track: frame, time, track_id, label, one column per label")
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


class _CsvSeries:
    """``--csv``: one row per face per frame (frame, time, track_id, label, score of every label)."""

    def __init__(self, path: Path | None, labels: Any) -> None:
        import csv

        self.labels = list(labels)
        self.file = open(path, "w", newline="", encoding="utf-8") if path else None
        self.writer = csv.writer(self.file) if self.file else None
        if self.writer:
            self.writer.writerow(["frame", "time", "track_id", "label", *self.labels])

    def write(self, result: Any) -> None:
        if self.writer:
            for p in result.predictions:
                self.writer.writerow([result.frame_index, f"{result.time:.4f}", p.track_id, p.label,
                                      *(f"{p.scores[n]:.6f}" for n in self.labels)])

    def close(self) -> None:
        if self.file:
            self.file.close()


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
    series = _CsvSeries(output_path(args.csv, args.force, "--csv"), recognizer.labels)
    n_frames = n_faces = 0
    results = None
    try:
        results = recognizer.stream(source, mode=args.mode, smooth=args.smooth, max_missed=args.max_missed)
        total = min(source.length, args.limit) if source.length and args.limit else source.length or args.limit
        for r in progress(results, total, "ofer run", enabled=show):
            if args.limit is not None and n_frames >= args.limit:
                break
            n_frames += 1
            for face, p in enumerate(r.predictions):
                n_faces += 1
                record = {"frame": r.frame_index, "time": round(r.time, 4), "name": r.name, "face": face,
                          **p.to_dict()}
                stream.write(json.dumps(record) + "\n")
            series.write(r)
            if out_path is not None:
                writer.write(r.name, draw_predictions(r.image, r.predictions))
        stream.flush()
    finally:
        if results is not None:
            results.close()
        source.close()
        writer.close()
        series.close()
        if jsonl:
            stream.close()
    dropped = f", {results.dropped} dropped ({results.mode} mode)" if results.mode == "realtime" else ""
    print(f"ofer run: {n_frames} frames, {n_faces} faces{dropped}"
          + (f"; annotated output in {out_path}" if out_path else ""), file=sys.stderr)
    return 0
