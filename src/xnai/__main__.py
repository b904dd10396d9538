"""``python -m xnai``."""

from xnai.cli.main import main

main()
