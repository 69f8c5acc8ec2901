"""Bridges to other tools (MLflow). Each module imports its tool only inside the functions that use it."""
