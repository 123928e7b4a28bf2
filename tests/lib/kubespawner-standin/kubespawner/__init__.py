"""A test stand-in for KubeSpawner (the `jupyterhub-kubespawner` package), loaded by
tests/lib/hub.py with `hub.py start --kubespawner K8S_DIR`.

Same import paths as the real package, so that JupyterHub's `GET /hub/api/info`
reports `"spawner": {"class": "kubespawner.spawner.KubeSpawner", "version": __version__}`
exactly as a zero-to-jupyterhub hub does. What it follows of the real one, and what
it does not, is in spawner.py's header.
"""
import os

# The KubeSpawner release whose storage behaviour spawner.py imitates: 7.1.0 by default,
# or 6.x with KUBESPAWNER_STANDIN_VERSION=6.2.0 (hub.py start --kubespawner-version).
__version__ = os.environ.get("KUBESPAWNER_STANDIN_VERSION") or "7.1.0"
version_info = tuple(int(p) if p.isdigit() else p for p in __version__.split("."))

from .spawner import KubeSpawner  # noqa: E402  (kubespawner.KubeSpawner works too)

__all__ = ["KubeSpawner", "__version__", "version_info"]
