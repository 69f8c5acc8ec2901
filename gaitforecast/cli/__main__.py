"""`python -m gaitforecast.cli ...`: the same entry point as the `gaitforecast` console script."""

from gaitforecast.cli import main

main()
