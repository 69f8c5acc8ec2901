"""`gaitforecast` command line. Commands live in sibling modules, one per area; each is a thin face over the library."""

from __future__ import annotations

import sys

from gaitforecast.cli._common import app, console, labelled
from gaitforecast.errors import GaitforecastError

# Importing a command module registers its commands on `app`.
from gaitforecast.cli import (  # noqa: E402,F401
    cmd_dashboard,
    cmd_data,
    cmd_design,
    cmd_laws,
    cmd_models,
    cmd_report,
    cmd_runs,
    cmd_summary,
    cmd_train,
)


def main() -> None:
    """Console-script entry point: bad input -> one line on stderr and exit 2, no traceback."""
    try:
        app()
    except GaitforecastError as exc:
        console.print(labelled("error:", "bold red", str(exc)), highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted", highlight=False)
        sys.exit(130)


if __name__ == "__main__":
    main()
