"""`python -m sweeps`: the `sweeps` command, for an environment without the console script on PATH."""

from sweeps.cli import main

if __name__ == "__main__":
    main()
