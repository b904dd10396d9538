"""Audit log adapters: the HMAC-chained JSON Lines file."""

from xnai.adapters.audit.jsonl import JsonlAuditLog

__all__ = ["JsonlAuditLog"]
