"""Adapters: one module per backend implementing a domain port."""
