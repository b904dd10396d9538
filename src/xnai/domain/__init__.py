"""Domain: the project's own types, ports and errors; imports nothing else from xnai."""
