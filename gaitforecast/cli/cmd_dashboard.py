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


def check_address(address: str) -> None:
    """Refuse an --address that is not an IP address or a resolvable host name, before Streamlit sees it."""
    import ipaddress
    import socket

    try:
        ipaddress.ip_address(address)
        return
    except ValueError:
        pass
    try:
        socket.getaddrinfo(address, None)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise GaitforecastError(f"--address {address!r} is not an IP address or a known host name") from exc


@app.command("dashboard")
def dashboard(
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="Path of the DuckDB run store to show."),
    port: int = typer.Option(None, "--port", help="Port to serve on (default: Streamlit's, 8501)."),
    headless: bool = typer.Option(False, "--headless", help="Do not open a browser (servers, CI)."),
    address: str = typer.Option(
        "127.0.0.1", "--address",
        help="Address to bind (default 127.0.0.1: this machine only; the app has no login and shows configs, "
             "hosts and commits). 0.0.0.0 serves every interface."),
) -> None:
    """Start the dashboard (Runs, Scaling laws, Compute-optimal, Forecast, Architectures, Backtest, muP).

    The app reads the store without holding it, so a sweep can keep writing; a missing or empty store shows
    what to run. Stop it with Ctrl-C.
    """
    if port is not None and not 0 < port < 65536:
        raise GaitforecastError(f"--port must be between 1 and 65535, got {port}")
    check_address(address)
    if address not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"warning: serving on {address}: anyone who can reach this address sees the store (no login)",
                      highlight=False)
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
