"""`python -m xscreen.cli ...`: the same console script, for subprocesses that run without the installed entry point."""

from xscreen.cli import main

main()
