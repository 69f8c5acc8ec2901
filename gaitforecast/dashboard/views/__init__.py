"""One module per dashboard page, run by st.navigation from gaitforecast/dashboard/main.py."""
