"""``python -m ticktape``."""

from ticktape.cli import main

main()
