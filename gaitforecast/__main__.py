"""`python -m gaitforecast` runs the command line."""

from gaitforecast.cli import main

main()
