"""Turning a document's bytes into the text (or images) the model reads, within limits."""

from daemon.extract.core import Extracted, ExtractLimits, extract

__all__ = ["Extracted", "ExtractLimits", "extract"]
