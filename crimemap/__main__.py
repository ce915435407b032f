"""``python -m crimemap`` runs the CLI."""

from crimemap.cli import main

main()
