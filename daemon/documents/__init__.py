"""Turning a document's bytes into the text (or images) the model reads, within limits."""

from daemon.documents.core import Document, ReadLimits, read_document

__all__ = ["Document", "ReadLimits", "read_document"]
