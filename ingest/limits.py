"""How much one file may cost to read: what stops a decompression bomb, a giant page or a
100,000-page PDF from taking the machine or the job. Over a limit, the file is reported
by name with the limit it passed (``[ingest]`` settings) and the job goes on."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from ingest.blocks import ParseError


class TooLarge(ParseError):
    kind = "too-large"


@dataclass
class ParseLimits:
    parser_memory_mb: int = 4096  # address space of the parser process (RLIMIT_AS); 0: no limit
    max_pages: int = 5000  # pages of one PDF
    ocr_megapixels: float = 60.0  # a scanned page is rendered for OCR at most this large (a lower resolution beyond)
    max_unzipped_mb: int = 500  # what an Office or OpenDocument file may expand to
    max_chunks_per_file: int = 20000  # chunks of one file

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """ValueError naming the limit and what to use instead."""
        for name in ("parser_memory_mb", "max_pages", "max_unzipped_mb", "max_chunks_per_file"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)}; use 0 (no limit) or more")
        if self.ocr_megapixels <= 0:
            raise ValueError(f"ocr_megapixels = {self.ocr_megapixels}; use more than 0, e.g. 60")

    def check_unzipped(self, path: Path) -> None:
        """Refuse a zip package (docx, xlsx, odt, epub...) that expands past ``max_unzipped_mb``."""
        if not self.max_unzipped_mb or not zipfile.is_zipfile(path):
            return
        try:
            with zipfile.ZipFile(path) as z:
                total = sum(max(i.file_size, 0) for i in z.infolist())
        except (zipfile.BadZipFile, OSError):
            return  # a damaged package: its parser reports it
        if total > self.max_unzipped_mb * 1_000_000:
            raise TooLarge(f"expands to {total / 1e6:,.0f} MB when unpacked, more than ingest.max_unzipped_mb "
                           f"({self.max_unzipped_mb} MB): not read")

    def check_chunks(self, chunks: int) -> None:
        if self.max_chunks_per_file and chunks > self.max_chunks_per_file:
            raise TooLarge(f"{chunks:,} chunks, more than ingest.max_chunks_per_file ({self.max_chunks_per_file:,}): "
                           "not indexed")

    def check_pages(self, pages: int) -> None:
        if self.max_pages and pages > self.max_pages:
            raise TooLarge(f"{pages:,} pages, more than ingest.max_pages ({self.max_pages:,}): not read")

    def ocr_scale(self, width_pt: float, height_pt: float, dpi: int = 300) -> float:
        """The render scale for OCR: 300 dpi, or less when that would pass ``ocr_megapixels``."""
        scale = dpi / 72
        pixels = width_pt * height_pt * scale * scale
        cap = self.ocr_megapixels * 1e6
        return scale if pixels <= cap else scale * (cap / pixels) ** 0.5
