"""`python -m cli ...`: the same console script, for subprocesses that run without the installed entry point."""

from cli import main

main()
