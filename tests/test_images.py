"""Images: sent to a vision model as images, recorded without their bytes; skipped for others."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import zlib

import pytest

from tests.support import make_home

WORKFLOW = """
name: photos
model: {model}
trigger: {{watch: {{path: ~/Inbox}}}}
steps:
  - id: summary
    summarise: {{max_words: 30}}
  - id: kind
    classify:
      labels: {{receipt: A receipt, other: Anything else}}
  - id: fields
    extract:
      fields: {{total: number}}
  - id: caption
    prompt: Write a caption for this document.
  - id: filed
    route:
      by: kind
      routes: {{receipt: {{move_to: ~/Documents/Receipts}}}}
      default: {{move_to: ~/Documents/Other}}
"""


def png(width: int = 4, height: int = 3) -> bytes:
    """A real PNG: signature, IHDR, one IDAT of grey pixels, IEND."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) + b"\xff\xd9"


@pytest.fixture
def home(tmp_path, standin):
    standin.config.update({"vision": ["llava"]})
    return make_home(tmp_path, standin.url)


def test_image_goes_to_a_vision_model_as_an_image_and_is_recorded_as_a_digest(home, standin):
    home.write_workflow("photos.yaml", WORKFLOW.format(model="llava"))
    image = png()
    (home.inbox / "receipt.png").write_bytes(image)
    (home.inbox / "photo.jpg").write_bytes(JPEG)

    home.cli("run", "--once", check=True)

    runs = {r["input"].rsplit("/", 1)[-1]: r for r in home.runs()}
    for name, data in (("receipt.png", image), ("photo.jpg", JPEG)):
        run = runs[name]
        assert run["status"] == "succeeded", run["error"]
        assert run["outputs"]["summary"]["text"] == f"An image of {len(data)} bytes."
        assert run["outputs"]["caption"]["text"] == f"An image of {len(data)} bytes."
        assert run["outputs"]["kind"]["label"] in ("receipt", "other")
        assert set(run["outputs"]["fields"]) - {"_text"} == {"total"}  # _text: each number as answered
        assert run["outputs"]["filed"]["destination"]
    assert not list(home.inbox.glob("*.*"))  # both were routed

    encoded = base64.b64encode(image).decode()
    chats = [r["body"] for r in standin.recorded() if r["path"] == "/api/chat"]
    sent = [b for b in chats if encoded in (b["messages"][-1].get("images") or [])]
    assert len(sent) == 4  # summarise, classify, extract, prompt: each got the image itself
    assert all(b["model"] == "llava" for b in sent)

    shown = home.cli("show", str(runs["receipt.png"]["id"]), "--json", check=True).stdout
    calls = json.loads(shown)["calls"]
    assert len(calls) == 4
    placeholder = {"image": hashlib.sha256(image).hexdigest(), "bytes": len(image)}
    assert all(c["messages"][-1]["images"] == [placeholder] for c in calls)
    assert encoded[:40] not in shown
    stored = list(home.data.glob("gristmill.db*"))
    assert stored
    for db in stored:  # the database (and its WAL) never hold the image data
        assert encoded[:40].encode() not in db.read_bytes()


def test_image_for_a_model_without_vision_is_skipped_naming_the_model(home, standin):
    home.write_workflow("photos.yaml", WORKFLOW.format(model="llama3.2"))
    (home.inbox / "receipt.png").write_bytes(png())

    home.cli("run", "--once", check=True)

    (run,) = home.runs()
    assert run["status"] == "skipped"
    assert "receipt.png is an image and model 'llama3.2' cannot read images" in run["error"]
    assert "vision model" in run["error"]
    assert not [r for r in standin.recorded() if r["path"] == "/api/chat"]
    assert (home.inbox / "receipt.png").exists()
