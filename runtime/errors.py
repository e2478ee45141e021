"""Errors ofer raises. Every message names the problem and what to do about it."""

from __future__ import annotations


class OferError(Exception):
    """Base class of every error ofer raises on purpose (the CLI prints these as one line)."""


class InputError(OferError, ValueError):
    """A frame, path or argument the user passed is not usable (wrong type, shape, dtype, missing file)."""


class BundleError(OferError):
    """A bundle is missing, corrupt, tampered with, unsafe, or of an unsupported schema version."""


class EngineError(OferError):
    """An engine cannot be loaded or run on this machine (missing backend, wrong GPU, bad model file)."""


class DatasetError(OferError):
    """A dataset file is missing or malformed; the message names the file and, where known, the line."""


class ConfigError(OferError, ValueError):
    """A configuration value or option is invalid (unknown name, out of range, inconsistent)."""


class ExportError(OferError):
    """Export failed a check (ONNX parity, INT8 agreement); the message says which setting to try."""
