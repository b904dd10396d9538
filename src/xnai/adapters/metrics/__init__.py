"""Metrics adapters: the ``Metrics`` port over prometheus_client and the system readers."""
