"""``python -m metering`` and the ``meter`` command.

Worker processes start by importing the module that started meter (the ``meter`` script,
which imports this one): so this module imports nothing until meter runs, and a worker
spends no time loading the command line's libraries.
"""


def main() -> None:
    from metering.cli import main as run

    run()


if __name__ == "__main__":
    main()
