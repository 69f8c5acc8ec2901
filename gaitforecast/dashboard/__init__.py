"""Streamlit dashboard over the run store.

Start it with ``gaitforecast dashboard [--store PATH]`` or ``streamlit run app/streamlit_app.py -- --store PATH``.
The entry script is :mod:`gaitforecast.dashboard.main`; pages live in ``views/`` (not ``pages/``, which Streamlit
would treat as a legacy multipage folder); ``data`` reads the store, ``fits`` caches the laws by the store file's
content signature, ``charts`` builds the Altair charts.
"""

from pathlib import Path

ENTRY_SCRIPT = Path(__file__).with_name("main.py")

__all__ = ["ENTRY_SCRIPT"]
