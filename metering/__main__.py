"""``python -m metering`` runs the ``meter`` command."""

from metering.cli import main

main()
