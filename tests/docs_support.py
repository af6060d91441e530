"""Documents the extraction tests build themselves: PDFs, DOCX, HTML, e-mail, bombs."""

from __future__ import annotations

import io
import zipfile
import zlib
from email.message import EmailMessage


def pdf(pages: list[str], *, title: str | None = None) -> bytes:
    """A real PDF with one text line per page (Helvetica), written object by object."""
    objects: list[bytes] = []
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 712 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    info = f"<< /Title ({title}) >>".encode() if title else None
    if info:
        objects.append(info)
    return _assemble(objects, info_ref=len(objects) if info else None)


def scanned_pdf(pages: list[str | None], *, size: tuple[float, float] = (612, 792)) -> bytes:
    """A PDF whose `None` pages hold only an image (a black bar on white, like a scan) and whose
    text pages are made by `pdf`; built with pypdfium2 and Pillow."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

    document = pdfium.PdfDocument.new()
    for text in pages:
        if text is not None:
            document.import_pages(pdfium.PdfDocument(pdf([text])))
            continue
        page = document.new_page(*size)
        scan = Image.new("RGB", (850, 1100), "white")
        ImageDraw.Draw(scan).rectangle((100, 100, 750, 300), fill="black")
        image = pdfium.PdfImage.new(document)
        image.set_bitmap(pdfium.PdfBitmap.from_pil(scan))
        image.set_matrix(pdfium.PdfMatrix().scale(*size))
        page.insert_obj(image)
        page.gen_content()
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pdf_bomb(unpacked_mb: int = 200) -> bytes:
    """One page whose FlateDecode content unpacks to `unpacked_mb` MB of spaces."""
    packed = zlib.compress(b" " * (unpacked_mb << 20), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(packed), packed),
    ]
    return _assemble(objects)


def _assemble(objects: list[bytes], info_ref: int | None = None) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (n, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    info = b" /Info %d 0 R" % info_ref if info_ref else b""
    out.write(b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, info, xref))
    return out.getvalue()


_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def docx(paragraphs: list[str], *, title: str = "") -> bytes:
    """A minimal Word document: content types, the body, core properties."""
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    core = (
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></cp:coreProperties>'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", f"<w:document {_W}><w:body>{body}</w:body></w:document>")
        z.writestr("docProps/core.xml", core)
    return buf.getvalue()


def docx_bomb(unpacked_mb: int = 64) -> bytes:
    """A .docx whose body unpacks to `unpacked_mb` MB: a zip bomb in Word's clothes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr(
            "word/document.xml",
            f"<w:document {_W}><w:t>".encode() + b"x" * (unpacked_mb << 20) + b"</w:t></w:document>",
        )
    return buf.getvalue()


HTML_PAGE = """<!doctype html><html><head><title>Quarterly report</title>
<script>var tracking = "do not read me";</script><style>body{color:red}</style></head>
<body><nav><a href="/">Home</a> <a href="/about">About us menu</a></nav>
<header>Site banner</header>
<main><h1>Results</h1><p>Revenue grew by 12 percent in the third quarter.</p>
<p>Costs fell&nbsp;slightly.</p></main>
<footer>Copyright footer</footer></body></html>
"""


def eml_with_attachment() -> bytes:
    """An e-mail with a text body and a PDF attachment."""
    message = EmailMessage()
    message["From"] = "Anna Example <anna@example.org>"
    message["To"] = "ben@example.org"
    message["Subject"] = "Invoice for October"
    message["Date"] = "Mon, 02 Nov 2026 09:00:00 +0100"
    message.set_content("Hello Ben,\n\nplease find the invoice attached.\n\nAnna\n")
    message.add_attachment(pdf(["Invoice"]), maintype="application", subtype="pdf", filename="invoice-10.pdf")
    return message.as_bytes()
