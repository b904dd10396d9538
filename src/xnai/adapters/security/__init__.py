"""Security adapters: key ring and encrypted files, password hashes, one-time codes."""
