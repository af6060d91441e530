"""Extraction over files the tests build: each gets its text or a clear, contained outcome."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from daemon.documents import ReadLimits, read_document
from daemon.errors import InputError, PermanentInputError, SkipRun
from tests import docs_support as docs

LIMITS = ReadLimits(max_chars=200_000, seconds=30, memory_mb=1024)


def test_multi_page_pdf_gives_every_page_and_its_metadata():
    data = docs.pdf(["First page text", "Second page text", "Third page text"], title="Report")
    result = read_document(Path("report.pdf"), data, LIMITS)
    assert result.kind == "pdf"
    assert ["First page text", "Second page text", "Third page text"] == result.text.split("\n\n")
    assert result.meta["pages"] == 3 and result.meta["title"] == "Report"


def test_pdf_without_text_layer_is_skipped_with_the_reason():
    data = docs.pdf(["", ""])
    with pytest.raises(SkipRun, match=r"scan\.pdf has no text layer \(2 pages, a scan\?\)"):
        read_document(Path("scan.pdf"), data, LIMITS)


def test_broken_pdf_fails_with_a_reason():
    data = docs.pdf(["Hello"])[:60] + b"garbage that is not a PDF body"
    with pytest.raises(PermanentInputError, match=r"broken\.pdf could not be read as a PDF"):
        read_document(Path("broken.pdf"), data, LIMITS)  # permanent: the run fails without more attempts


def test_pdf_decompression_bomb_is_contained():
    # pypdf itself stops inflating at its own limit; our memory limit is the backstop. Either way
    # the outcome is a clear refusal within the limits, never the daemon's memory.
    started = time.monotonic()
    with pytest.raises((InputError, SkipRun), match=r"bomb\.pdf (could not be read|has no text)"):
        read_document(Path("bomb.pdf"), docs.pdf_bomb(200), ReadLimits(memory_mb=256, seconds=30))
    assert time.monotonic() - started < 30


def test_memory_limit_contains_a_parse():
    # Under the unpacked-size check (max_chars is large here) but over the memory limit.
    with pytest.raises(InputError, match=r"big\.docx could not be read as a Word document: .*(memory|died)"):
        read_document(Path("big.docx"), docs.docx_bomb(120), ReadLimits(max_chars=5_000_000, memory_mb=128))


def test_docx_paragraphs_and_title():
    data = docs.docx(["Dear customer,", "your order has shipped."], title="Shipping note")
    result = read_document(Path("note.docx"), data, LIMITS)
    assert result.kind == "docx"
    assert result.text == "Dear customer,\nyour order has shipped."
    assert result.meta["title"] == "Shipping note"


def test_zip_bomb_named_docx_is_refused():
    with pytest.raises(InputError, match=r"bomb\.docx could not be read as a Word document: .*zip bomb"):
        read_document(Path("bomb.docx"), docs.docx_bomb(64), LIMITS)


SCANS = ReadLimits(max_chars=200_000, seconds=30, memory_mb=1024, scan_pages=5)


def _png(data: bytes):
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def test_pdf_pages_without_text_are_rendered_with_their_page_numbers():
    result = read_document(Path("scan.pdf"), docs.scanned_pdf([None, None]), SCANS)
    assert result.text == "" and result.image_pages == (1, 2) and len(result.images) == 2
    assert result.meta["scanned_pages"] == [1, 2] and result.meta["pages"] == 2
    page = _png(result.images[0])
    assert page.width == 1275 and abs(page.height - 1650) <= 1  # US Letter at 150 dpi
    assert page.convert("L").getpixel((page.width // 2, page.height * 2 // 11)) < 64  # the black bar
    assert page.convert("L").getpixel((5, page.height - 5)) > 200  # white paper


def test_a_mixed_pdf_gives_the_text_pages_as_text_and_the_scans_as_images():
    result = read_document(Path("letter.pdf"), docs.scanned_pdf(["Cover letter", None, "Appendix"]), SCANS)
    assert result.text == "Cover letter\n\nAppendix"
    assert result.image_pages == (2,) and len(result.images) == 1 and result.meta["scanned_pages"] == [2]


def test_scanned_pages_beyond_the_page_limit_are_counted_not_rendered():
    limits = ReadLimits(scan_pages=2)
    result = read_document(Path("scan.pdf"), docs.scanned_pdf([None, None, None]), limits)
    assert result.image_pages == (1, 2) and result.meta["scanned_pages_left_out"] == 1


def test_the_pixel_limit_shrinks_every_rendered_page():
    huge = docs.scanned_pdf([None], size=(14_400, 14_400))  # 200 x 200 inches, PDF's largest page
    result = read_document(Path("poster.pdf"), huge, ReadLimits(scan_pages=1, scan_pixels=250_000, memory_mb=512))
    page = _png(result.images[0])
    assert page.width * page.height <= 250_000 * 1.01


def test_without_scanning_a_pdf_of_scans_is_still_skipped():
    with pytest.raises(SkipRun, match=r"scan\.pdf has no text layer \(2 pages, a scan\?\)"):
        read_document(Path("scan.pdf"), docs.scanned_pdf([None, None]), LIMITS)


def test_html_keeps_the_main_text_without_menus_or_scripts():
    result = read_document(Path("page.html"), docs.HTML_PAGE.encode(), LIMITS)
    assert result.kind == "html" and result.meta["title"] == "Quarterly report"
    assert "Revenue grew by 12 percent" in result.text and "Costs fell slightly." in result.text
    for furniture in ("About us menu", "tracking", "color:red", "Copyright footer", "Site banner"):
        assert furniture not in result.text


def _html(markup: str) -> str:
    return read_document(Path("page.html"), f"<!doctype html><html><body>{markup}</body></html>".encode(), LIMITS).text


def test_a_page_wrapped_in_a_form_yields_its_text_without_the_controls():
    text = _html(
        '<form id="aspnetForm" action="/x"><div><h1>Notice</h1><p>The meeting moves to Friday.</p>'
        '<label>Name <input name="n"></label><button>Send now</button>'
        "<select><option>Option one</option></select><textarea>typed here</textarea></div></form>"
    )
    assert "Notice" in text and "The meeting moves to Friday." in text and "Name" in text
    for control in ("Send now", "Option one", "typed here"):
        assert control not in text


def test_an_articles_header_title_is_kept_and_the_site_banner_dropped():
    text = _html(
        "<header>Site banner</header><article><header><h1>Rates rise again</h1><p>By Anna</p></header>"
        "<p>The bank raised its rate.</p></article><footer>Copyright footer</footer>"
    )
    assert text.splitlines()[0] == "Rates rise again"
    assert "By Anna" in text and "The bank raised its rate." in text
    assert "Site banner" not in text and "Copyright footer" not in text


def test_table_cells_are_separated_and_rows_are_lines():
    text = _html(
        "<main><table><tr><th>Item</th><th>Price</th></tr><tr><td>Tea</td><td>3.50</td></tr>"
        "<tr><td>Cake <b>large</b></td><td>4.00</td></tr></table><p>Total 7.50</p>"
        "<table><tr><td>a<td>b<tr><td>c<td>d</table></main>"
    )
    assert text.splitlines()[:3] == ["Item | Price", "Tea | 3.50", "Cake large | 4.00"]
    assert "Total 7.50" in text and "a | b\nc | d" in text


def test_email_gives_headers_body_and_attachment_names():
    result = read_document(Path("mail.eml"), docs.eml_with_attachment(), LIMITS)
    assert result.kind == "email"
    assert "Subject: Invoice for October" in result.text
    assert "please find the invoice attached." in result.text
    assert "Attachments: invoice-10.pdf" in result.text
    assert result.meta["sender"] == "Anna Example <anna@example.org>"
    assert result.meta["attachments"] == ["invoice-10.pdf"]


def test_latin1_text_is_decoded():
    data = "Grüße aus Köln, schöne Straße, Gebühr: 12 €".encode("cp1252") * 3
    result = read_document(Path("brief.txt"), data, LIMITS)
    assert "Grüße aus Köln" in result.text and "\ufffd" not in result.text
    assert result.meta["encoding"] != "utf-8"


def test_invalid_utf8_is_replaced_not_fatal():
    result = read_document(Path("mixed.md"), b"# Title\nvalid text \xff\xfe\xfa then more", LIMITS)
    assert result.text.startswith("# Title\nvalid text")


def test_binary_named_txt_is_skipped():
    with pytest.raises(SkipRun, match=r"notes\.txt is a binary file"):
        read_document(Path("notes.txt"), bytes(range(256)) * 8, LIMITS)


def test_empty_file_is_skipped():
    with pytest.raises(SkipRun, match=r"empty\.txt is empty"):
        read_document(Path("empty.txt"), b"", LIMITS)


def test_content_wins_over_the_name():
    result = read_document(Path("looks-like.txt"), docs.pdf(["Actually a PDF"]), LIMITS)
    assert result.kind == "pdf" and result.text == "Actually a PDF"


def test_csv_and_json_are_text_with_metadata():
    table = read_document(Path("export.csv"), b"date,amount\n2026-01-01,12.5\n2026-01-02,3\n", LIMITS)
    assert table.kind == "csv" and table.meta["columns"] == ["date", "amount"] and table.meta["rows"] == 2
    data = read_document(Path("data.json"), b'{"a": 1}', LIMITS)
    assert data.kind == "json" and data.text == '{"a": 1}' and data.meta["valid_json"] is True


def test_long_text_is_cut_at_max_chars_and_says_so():
    result = read_document(Path("long.txt"), b"word " * 1000, ReadLimits(max_chars=100))
    assert len(result.text) == 100 and result.truncated and result.meta["chars"] == 5000


def test_parser_time_limit_ends_the_parse():
    page = ("<p>" + "text " * 20 + "</p>") * 400_000
    started = time.monotonic()
    with pytest.raises(InputError, match=r"took longer than 0\.2 s") as raised:
        read_document(Path("huge.html"), page.encode(), ReadLimits(seconds=0.2))
    assert not isinstance(raised.value, PermanentInputError)  # a busy machine may do better next time
    assert time.monotonic() - started < 10


def test_images_are_passed_on_as_images():
    png = (
        b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big") + (480).to_bytes(4, "big") + b"\x08\x02"
    )
    result = read_document(Path("receipt.png"), png, LIMITS)
    assert result.kind == "image" and result.images == (png,)
    assert result.meta["width"] == 640 and result.meta["height"] == 480


def test_binary_is_told_by_the_share_of_control_characters_as_counted_byte_by_byte():
    import random

    from daemon.documents.sniff import looks_binary

    def by_byte(head: bytes) -> bool:  # the rule as written before it was counted in C
        if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return True
        return sum(1 for b in head if b < 9 or 13 < b < 32 or b == 127) > len(head) // 10

    rng = random.Random(17)
    samples = [b"", b"plain text\n", b"\x1b[0m colours", bytes(range(1, 256)), b"\x7f" * 10 + b"a" * 90]
    samples += [b"a" * 89 + bytes([rng.choice([1, 2, 27, 127, 9, 10, 13])]) * 11 for _ in range(50)]
    samples += [bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 400))) for _ in range(200)]
    for head in samples:
        assert looks_binary(head) == by_byte(head), head
