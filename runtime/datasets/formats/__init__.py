"""Readers of the real facial-expression dataset formats (one module per format)."""

from __future__ import annotations

from .affectnet import AffectNet
from .ckplus import CKPlus
from .fer2013 import FER2013, read_fer2013
from .ferplus import FERPlus
from .folder import ImageFolder
from .rafdb import RAFDB

__all__ = ["AffectNet", "CKPlus", "FER2013", "FERPlus", "ImageFolder", "RAFDB", "read_fer2013"]
