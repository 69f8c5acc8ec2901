"""Thin launcher so `streamlit run app/streamlit_app.py -- --store PATH` works from a checkout.

The dashboard itself lives in the package (gaitforecast/dashboard/) so that it also works from a pip install;
`gaitforecast dashboard --store PATH` is the usual way to start it.
"""

import runpy
import sys
from pathlib import Path

try:
    from gaitforecast.dashboard import ENTRY_SCRIPT
except ImportError:  # a checkout that is not pip-installed: import the package next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gaitforecast.dashboard import ENTRY_SCRIPT

runpy.run_path(str(ENTRY_SCRIPT), run_name="__main__")
