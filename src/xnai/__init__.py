"""Xoe-NovAi: a private, offline-first assistant that answers from your own documents."""

__version__ = "0.1.0"
