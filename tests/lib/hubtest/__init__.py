"""Helpers loaded by the test JupyterHub (tests/lib/hub.py puts tests/lib on its PYTHONPATH)."""
