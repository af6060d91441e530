"""Compatibility: extraction lives in `daemon.extract`."""

from daemon.extract import Extracted, ExtractLimits, extract

__all__ = ["Extracted", "ExtractLimits", "extract"]
