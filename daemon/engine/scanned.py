"""Pages of a PDF without a text layer, read by a vision model (LLM OCR, as paperless-gpt does).

Each rendered page goes to the vision model with an instruction to write out its text; the answers
join the text of the pages that had a text layer, so every step afterwards reads one document with
the workflow's own model. Every call is recorded on the run (under `_input`, images as digests).
"""

from __future__ import annotations

import logging

from daemon.errors import BadAnswer
from daemon.llm import images as vision
from daemon.llm.ask import Asker
from daemon.llm.messages import chat

log = logging.getLogger("gristmill")

TRANSCRIBE = (
    "The attached image is page {page} of a scanned document. Write out all of its text as it "
    "appears, in reading order, and nothing else: no comments, no description of the page. If the "
    "page holds no text, answer with: (no text)"
)


def transcribe(asker: Asker, images: tuple[bytes, ...], pages: tuple[int, ...]) -> str:
    """The text of each scanned page, read by `asker`'s vision model, each under a `[page N]` line."""
    parts = []
    for image, page in zip(images, pages, strict=True):
        messages = vision.attach(chat(TRANSCRIBE.format(page=page), vision.IMAGE_DOCUMENT), (image,))
        try:
            text = asker.text(messages)
        except BadAnswer:  # an empty answer: a page without text, as far as the model can see
            text = "(no text)"
        log.info("%s: read page %d of a scan with %s", asker.about, page, asker.model)
        parts.append(f"[page {page}, read from its image]\n{text}")
    return "\n\n".join(parts)
