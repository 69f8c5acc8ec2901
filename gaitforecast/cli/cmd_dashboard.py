"""`gaitforecast dashboard`: start the Streamlit app over a run store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from gaitforecast.cli._common import DEFAULT_STORE, app, console
from gaitforecast.errors import GaitforecastError


def streamlit_command(store: Path, port: int | None = None, headless: bool = False,
                      address: str | None = None) -> list[str]:
    """The `streamlit run` command line that serves the dashboard for ``store`` (used by the CLI and tests)."""
    from gaitforecast.dashboard import ENTRY_SCRIPT

    cmd = [sys.executable, "-m", "streamlit", "run", str(ENTRY_SCRIPT),
           "--browser.gatherUsageStats", "false"]
    if port is not None:
        cmd += ["--server.port", str(port)]
    if headless:
        cmd += ["--server.headless", "true"]
    if address:
        cmd += ["--server.address", address]
    return cmd + ["--", "--store", str(store)]


@app.command("dashboard")
def dashboard(
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="Path of the DuckDB run store to show."),
    port: int = typer.Option(None, "--port", help="Port to serve on (default: Streamlit's, 8501)."),
    headless: bool = typer.Option(False, "--headless", help="Do not open a browser (servers, CI)."),
    address: str = typer.Option(None, "--address", help="Address to bind, e.g. 127.0.0.1 or 0.0.0.0."),
) -> None:
    """Start the dashboard (Runs, Scaling laws, Compute-optimal, Forecast, Architectures, Backtest, muP).

    The app reads the store without holding it, so a sweep can keep writing; a missing or empty store shows
    what to run. Stop it with Ctrl-C.
    """
    if port is not None and not 0 < port < 65536:
        raise GaitforecastError(f"--port must be between 1 and 65535, got {port}")
    if not store.exists():
        console.print(f"note: no store at {store} yet; the app will say how to create one "
                      f"(gaitforecast run-small --store {store})", highlight=False)
    cmd = streamlit_command(store, port=port, headless=headless, address=address)
    env = dict(os.environ, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    console.print(f"starting dashboard for {store} (Ctrl-C to stop)", highlight=False)
    sys.stderr.flush()
    # Become the server rather than wrap it: signals (Ctrl-C, SIGTERM from a supervisor) reach Streamlit itself
    # and no orphaned server outlives this command.
    os.execve(cmd[0], cmd, env)
