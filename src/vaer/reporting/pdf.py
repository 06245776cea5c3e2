"""PDF of the HTML report through WeasyPrint (the optional extra ``vaer[pdf]``)."""

from __future__ import annotations

from pathlib import Path

PDF_EXTRA_MESSAGE = (
    "PDF output needs WeasyPrint, the optional extra `vaer[pdf]`: pip install 'vaer[pdf]'"
)


def write_pdf(html: str, path: Path) -> Path:
    """Render ``html`` (a self-contained report) to ``path`` as PDF.

    Raises
    ------
    ImportError
        If WeasyPrint (the ``pdf`` extra) is not installed; the message names the extra.
    """
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: missing system libraries (pango)
        raise ImportError(f"{PDF_EXTRA_MESSAGE} ({exc})") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    HTML(string=html, base_url=None).write_pdf(path)
    return path
