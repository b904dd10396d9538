"""Loaders: turn the bytes of .txt, .md, .html, .pdf and .docx files into normalised text."""

from xnai.adapters.loaders.docx import DocxLoader
from xnai.adapters.loaders.html import HtmlLoader
from xnai.adapters.loaders.pdf import PdfLoader
from xnai.adapters.loaders.registry import (
    LOADER_FACTORIES,
    default_loaders,
    loader_for,
    supported_suffixes,
)
from xnai.adapters.loaders.text import TextLoader

__all__ = [
    "LOADER_FACTORIES",
    "DocxLoader",
    "HtmlLoader",
    "PdfLoader",
    "TextLoader",
    "default_loaders",
    "loader_for",
    "supported_suffixes",
]
