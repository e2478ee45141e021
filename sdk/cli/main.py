"""``ofer`` entry point: builds the parser from the subcommand modules and turns user errors into one line."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from typing import Sequence

# Subcommand modules, in the order `ofer --help` lists them. Each has add_parser(subparsers) and run(args) -> int,
# and imports heavy things (onnxruntime, torch) only inside run().
SUBCOMMANDS = ("run", "info", "train", "distill", "eval", "export", "build-engines", "profile")


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to each option's help, unless it has no default (None), is a flag (``--no-align``'s
    default True would read as "on by default") or already says one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            not action.option_strings
            or action.default is None
            or action.default is False
            or action.nargs == 0  # a flag: store_true/store_false/store_const/count
            or action.default == argparse.SUPPRESS
            or "default" in text
            or isinstance(action, argparse._VersionAction)
        ):
            return text
        return f"{text} (default: %(default)s)"


class OferParser(argparse.ArgumentParser):
    """``ArgumentParser`` whose help (and every subcommand's) shows the defaults."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def build_parser() -> argparse.ArgumentParser:
    """The full ``ofer`` parser."""
    from sdk import __version__

    parser = OferParser(prog="ofer", description="Facial expression recognition on occluded faces.")
    parser.add_argument("--version", action="version", version=f"ofer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"sdk.cli.{name.replace('-', '_')}").add_parser(sub)
    return parser


def _install_interrupt_handlers(command: str) -> dict[int, object]:
    """SIGTERM behaves like Ctrl-C (KeyboardInterrupt: outputs are closed properly); a second Ctrl-C or SIGTERM
    while that cleanup runs exits at once with 130."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    interrupted = False

    def handler(signum: int, frame: object) -> None:
        nonlocal interrupted
        if interrupted:
            print(f"\nofer {command}: interrupted again, exiting now", file=sys.stderr, flush=True)
            os._exit(130)
        interrupted = True
        raise KeyboardInterrupt

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ofer``; returns the exit code (0 ok, 1 runtime failure, 2 user error, 130 interrupted)."""
    from runtime.errors import OferError

    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # e.g. for `ofer train`'s resume command
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    previous = _install_interrupt_handlers(args.command)
    try:
        return int(args.func(args) or 0)
    except OferError as exc:
        if args.debug:
            raise
        print(f"ofer {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ofer {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `ofer run ... | head`
        return 0
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
