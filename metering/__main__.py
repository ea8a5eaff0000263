"""``python -m metering`` runs the ``meter`` command."""

from metering.cli import main

if __name__ == "__main__":  # worker processes import this module too: run nothing then
    main()
