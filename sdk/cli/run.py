"""``ofer run SOURCE``: recognise expressions in an image, a folder, a video or a camera."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any, TextIO

from runtime.errors import EngineError, InputError
from runtime.signals import signals_deferred
from runtime.video_writer import CODECS as VIDEO_OUT  # suffix -> codecs tried

from .args import add_recognizer_args, distinct_outputs, make_parent, output_path, recognizer_from_args, same_path
from .progress import progress


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="recognise expressions in an image, folder, video or camera",
        description="Prints one JSON line per face per frame (frame, time, box, label, scores).",
    )
    p.add_argument("source", help="image file, folder of images, video file, or camera index (e.g. 0)")
    p.add_argument("--jsonl", default=None, help="write the JSON lines to this file instead of stdout")
    p.add_argument(
        "--out",
        default=None,
        help="write the annotated image (image source), folder of images (folder source) or video "
        "(.mp4: H.264 when OpenCV or PyAV can encode it, else mp4v; .avi: MJPG) here",
    )
    p.add_argument(
        "--force", action="store_true", help="overwrite existing --out/--jsonl/--csv outputs (never the input)"
    )
    p.add_argument("--limit", type=int, default=None, help="stop after this many frames")
    p.add_argument(
        "--camera-retries",
        type=int,
        default=0,
        metavar="N",
        help="reopen a camera that stops delivering frames up to N times before the run fails (exit 1)",
    )
    p.add_argument(
        "--progress",
        choices=("auto", "on", "off"),
        default="auto",
        help="progress bar on stderr (auto: when stderr is a terminal and the source is a file)",
    )
    s = p.add_argument_group("stream")
    s.add_argument(
        "--mode",
        choices=("auto", "offline", "realtime"),
        default="auto",
        help="offline: every frame in order; realtime: drop stale frames, never lag (auto: realtime for "
        "cameras, offline for files)",
    )
    s.add_argument(
        "--smooth",
        default=None,
        help="per-face smoothing over time: ema:ALPHA (e.g. ema:0.5) or window:N (e.g. window:5)",
    )
    s.add_argument("--max-missed", type=int, default=15, help="frames a face may go undetected and keep its track id")
    s.add_argument(
        "--detect-every",
        type=int,
        default=1,
        help="run the full-frame detector every N frames (tracked faces are searched for in their predicted "
        "region in between; new faces are found only every N frames)",
    )
    s.add_argument(
        "--detect-workers",
        type=int,
        default=1,
        help="threads that run the full-frame detector at once on successive frames, each with its own detector "
        "(with --detect-every 1; pays where more than two cores are free)",
    )
    s.add_argument(
        "--csv",
        default=None,
        help="write a time series per track: frame, time, track_id, label, pipeline, occlusion, one column per label",
    )
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
            if not cv2.imwrite(str(make_parent(self.path)), image):
                raise InputError(f"could not write {self.path}")
        elif self.kind == "folder":
            self.path.mkdir(parents=True, exist_ok=True)
            target = self.path / frame_name
            if target.exists() and not self.force:
                raise InputError(f"{target} already exists; pass --force to overwrite")
            cv2.imwrite(str(target), image)
        else:
            if self.video is None:
                from runtime.video_writer import VideoWriter

                self.video = VideoWriter(make_parent(self.path), self.fps)  # suffix checked before the first frame
            self.video.write(image)

    @property
    def codec(self) -> str | None:
        """The video codec used (``avc1`` = H.264, ``mp4v``, ``MJPG``), once a frame was written."""
        return self.video.codec if self.video is not None else None

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


class _CsvSeries:
    """``--csv``: one row per face per frame (frame, time, track_id, label, pipeline, occlusion, score of every label,
    error); an item that could not be read gets one row with only frame, time and error."""

    def __init__(self, path: Path | None, labels: Any) -> None:
        import csv

        self.labels = list(labels)
        self.file = open(make_parent(path), "w", newline="", encoding="utf-8") if path else None
        self.writer = csv.writer(self.file) if self.file else None
        if self.writer:
            self.writer.writerow(["frame", "time", "track_id", "label", "pipeline", "occlusion", *self.labels, "error"])

    def write(self, result: Any) -> None:
        if not self.writer:
            return
        if result.error is not None:
            self.writer.writerow(
                [result.frame_index, f"{result.time:.4f}", "", "", "", "", *([""] * len(self.labels)), result.error]
            )
        for p in result.predictions:
            self.writer.writerow(
                [
                    result.frame_index,
                    f"{result.time:.4f}",
                    p.track_id,
                    p.label,
                    p.pipeline,
                    "" if p.occlusion is None else f"{p.occlusion:.4f}",
                    *(f"{p.scores[n]:.6f}" for n in self.labels),
                    "",
                ]
            )

    def close(self) -> None:
        if self.file:
            self.file.close()


def _check_out(path: str | None, kind: str, force: bool, source: str, names: list[str]) -> Path | None:
    """``--out`` checked before the first frame: its kind matches the source's, it is not the input, and it can be
    written."""
    import cv2

    from .args import check_writable

    if path is None:
        return None
    p = Path(path)
    if same_path(p, source):
        raise InputError(
            f"--out {p} is the input {source}; write the annotated output elsewhere (--force only "
            "replaces earlier outputs, never the input)"
        )
    if kind == "folder":
        if p.exists() and not p.is_dir():
            raise InputError(f"--out {p} must be a folder for a folder source")
        clash = [n for n in names if (p / n).exists()] if p.is_dir() and not force else []
        if clash:
            raise InputError(
                f"--out {p} already has {len(clash)} of the annotated files (e.g. {clash[0]}); "
                "choose another folder or pass --force to overwrite them"
            )
        check_writable(p, "--out")
        return p
    if kind == "image":
        if not cv2.haveImageWriter(str(p)):
            raise InputError(f"--out {p}: use an image extension such as .jpg or .png for an image source")
        return output_path(path, force, "--out")
    return output_path(path, force, "--out", suffixes=tuple(VIDEO_OUT))


def _json_line(record: dict[str, Any]) -> str:
    try:
        return json.dumps(record, allow_nan=False) + "\n"
    except ValueError:
        raise EngineError(
            f"frame {record.get('frame')}: a result is NaN or infinite; the engine is broken "
            "(re-export the bundle, or try --precision fp32)"
        ) from None


def run(args: argparse.Namespace) -> int:
    from runtime.draw import draw_predictions
    from runtime.sources import SourceWarning, open_source

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    if args.camera_retries < 0:
        raise InputError(f"--camera-retries must be >= 0, got {args.camera_retries}")
    inputs = [args.source] if Path(args.source).exists() else []
    jsonl = output_path(args.jsonl, args.force, "--jsonl", inputs=inputs)
    csv_path = output_path(args.csv, args.force, "--csv", inputs=inputs)
    source = open_source(args.source, camera_retries=args.camera_retries)
    try:
        out_path = _check_out(args.out, source.kind, args.force, args.source, source.names)
        distinct_outputs(jsonl=jsonl, csv=csv_path, out=out_path)
        recognizer = recognizer_from_args(args)
    except BaseException:
        source.close()
        raise
    writer = _Writer(out_path, source.kind, source.fps, args.force)
    show = args.progress == "on" or (
        args.progress == "auto" and sys.stderr.isatty() and source.kind in ("video", "folder")
    )
    stream: TextIO = open(make_parent(jsonl), "w", encoding="utf-8") if jsonl else sys.stdout
    series = _CsvSeries(csv_path, recognizer.labels)
    n_frames = n_faces = n_skipped = 0
    results = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SourceWarning)  # printed below, once, as ofer lines
            results = recognizer.stream(
                source,
                mode=args.mode,
                smooth=args.smooth,
                max_missed=args.max_missed,
                detect_every=args.detect_every,
                detect_workers=args.detect_workers,
            )
            total = min(source.length, args.limit) if source.length and args.limit else source.length or args.limit
            for r in progress(results, total, "ofer run", enabled=show):
                if args.limit is not None and n_frames + n_skipped >= args.limit:
                    break
                with signals_deferred():  # one result reaches every output, or none: they never disagree
                    series.write(r)
                    if r.error is not None:
                        stream.write(
                            _json_line(
                                {
                                    "frame": r.frame_index,
                                    "time": round(r.time, 4),
                                    "name": r.name,
                                    "error": r.error,
                                    "source_failed": r.source_failed,
                                }
                            )
                        )
                        if not r.source_failed:
                            n_skipped += 1
                            print(f"ofer run: skipped {r.name}: {r.error}", file=sys.stderr)
                        continue
                    n_frames += 1
                    for face, p in enumerate(r.predictions):
                        n_faces += 1
                        record = {
                            "frame": r.frame_index,
                            "time": round(r.time, 4),
                            "name": r.name,
                            "face": face,
                            **p.to_dict(),
                        }
                        stream.write(_json_line(record))
                    if out_path is not None:
                        writer.write(r.name, draw_predictions(r.image, r.predictions))
        stream.flush()
    except KeyboardInterrupt:
        print(f"ofer run: stopping after {n_frames} frames; closing the outputs", file=sys.stderr)
        raise
    finally:
        if results is not None:
            results.close()
        source.close()
        writer.close()
        series.close()
        if jsonl:
            stream.close()
    for message in source.warnings:
        print(f"ofer run: warning: {message}", file=sys.stderr)
    dropped = f", {results.dropped} dropped ({results.mode} mode)" if results.mode == "realtime" else ""
    skipped = f", {n_skipped} skipped (unreadable)" if n_skipped else ""
    codec = f" ({writer.codec}{' = H.264' if writer.codec == 'avc1' else ''})" if writer.codec else ""
    print(
        f"ofer run: {n_frames} frames, {n_faces} faces{skipped}{dropped}"
        + (f"; annotated output in {out_path}{codec}" if out_path else ""),
        file=sys.stderr,
    )
    if source.error is not None:
        print(f"ofer run: error: the source failed: {source.error}", file=sys.stderr)
        return 1
    return 0
