"""Services: use cases over domain ports; import only xnai.domain."""
