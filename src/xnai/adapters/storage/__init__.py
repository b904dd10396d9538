"""Persistence adapters: files of index generations and the SQL repository."""
