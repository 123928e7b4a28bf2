#!/usr/bin/python3
"""Write a standard seed for the fake: two Zero-to-JupyterHub hubs and a Nublado layout.

    /usr/bin/python3 tests/fake-k8s/make-seed.py OUTDIR   -> OUTDIR/seed.json, OUTDIR/jupyterhub.sqlite

The layout (see README.md):
- namespaces hub-a, hub-b: Deployment `hub` (pod labels component=hub, app=jupyterhub,
  container `hub`), /srv/jupyterhub on volumes hub-db-hub-a / hub-db-hub-b holding a
  jupyterhub.sqlite;
- namespace nublado: Deployment `hub` (same labels) with /srv/jupyterhub on hub-db-nublado,
  GafaelfawrIngress `proxy` (its Ingress `proxy` is made by the fake's operator),
  Secret nublado-secret (key hub.db.password), ConfigMap hub-config;
- lab namespaces nublado-alice, nublado-bob with a lab pod each (component=singleuser-server);
- decoys that must never match `nublado-*`: nubladox-test, other-nublado-carol;
- StorageClass `standard`, the default class (provisioner k8s.io/minikube-hostpath, reclaimPolicy
  Delete, Immediate), so claims created through the API are provisioned and bound as on a cluster.
  The hubs' volumes above are no claim objects: they keep mapping to DIR/volumes/<claim name>.
"""

import json
import os
import sqlite3
import sys

HUB_LABELS = {"component": "hub", "app": "jupyterhub"}
HUB_IMAGE = "quay.io/jupyterhub/k8s-hub:3.0.3"


def make_sqlite(path, users=("alice", "bob", "carol")):
    """A small database with JupyterHub's table names (enough for file-level backup/restore tests)."""
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
        INSERT INTO alembic_version VALUES ('0eee8c825d24');
        CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(255) UNIQUE, admin BOOLEAN,
                            created DATETIME, last_activity DATETIME, cookie_id VARCHAR(255));
        CREATE TABLE spawners (id INTEGER PRIMARY KEY, user_id INTEGER, server_id INTEGER, state TEXT,
                               name VARCHAR(255), started DATETIME, last_activity DATETIME);
        CREATE TABLE api_tokens (id INTEGER PRIMARY KEY, hashed VARCHAR(255), prefix VARCHAR(16),
                                 user_id INTEGER, created DATETIME);
    """)
    db.executemany("INSERT INTO users (name, admin, created) VALUES (?, 0, '2024-01-01 00:00:00')",
                   [(u,) for u in users])
    db.commit()
    db.close()


def hub(namespace, volume, sqlite_name):
    return {"namespace": namespace, "name": "hub", "labels": HUB_LABELS, "container": "hub", "image": HUB_IMAGE,
            "volumes": [{"mountPath": "/srv/jupyterhub", "volume": volume}],
            "files": [{"volume": volume, "path": "jupyterhub.sqlite", "copy": sqlite_name}]}


def lab(user):
    return {"namespace": "nublado-" + user, "name": "nb-" + user,
            "labels": {"component": "singleuser-server", "app": "jupyterhub", "hub.jupyter.org/username": user},
            "container": "notebook", "image": "ghcr.io/lsst-sqre/sciplat-lab:w_2024_01"}


def seed(sqlite_name="jupyterhub.sqlite"):
    return {
        "namespaces": [
            {"name": "hub-a", "labels": {"app.kubernetes.io/part-of": "jupyterhub"}},
            {"name": "hub-b", "labels": {"app.kubernetes.io/part-of": "jupyterhub"}},
            {"name": "nublado", "labels": {"argocd.argoproj.io/instance": "nublado"}},
            "nublado-alice", "nublado-bob", "nubladox-test", "other-nublado-carol",
        ],
        "deployments": [hub("hub-a", "hub-db-hub-a", sqlite_name), hub("hub-b", "hub-db-hub-b", sqlite_name),
                        hub("nublado", "hub-db-nublado", sqlite_name)],
        "pods": [lab("alice"), lab("bob")],
        "objects": [
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
             "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                          "labels": {"addonmanager.kubernetes.io/mode": "EnsureExists"}},
             "provisioner": "k8s.io/minikube-hostpath", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "nublado-secret", "namespace": "nublado"},
             "type": "Opaque", "data": {"hub.db.password": "aHViLWRiLXBhc3N3b3Jk"}},  # hub-db-password
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hub-config", "namespace": "nublado"},
             "data": {"jupyterhub.hub.db.url": "postgresql://nublado@cloudsql-proxy.nublado/nublado",
                      "values.yaml": "hub:\n  db:\n    type: postgres\n"}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hub", "namespace": "nublado"},
             "spec": {"selector": HUB_LABELS, "ports": [{"name": "hub", "port": 8081}]}},
            {"apiVersion": "gafaelfawr.lsst.io/v1alpha1", "kind": "GafaelfawrIngress",
             "metadata": {"name": "proxy", "namespace": "nublado"},
             "config": {"baseUrl": "https://data.example.com", "scopes": {"all": ["exec:notebook"]},
                        "loginRedirect": True},
             "template": {"metadata": {"name": "proxy"},
                          "spec": {"rules": [{"host": "data.example.com", "http": {"paths": [
                              {"path": "/nb", "pathType": "Prefix",
                               "backend": {"service": {"name": "proxy-public", "port": {"number": 8000}}}}]}}]}}},
        ],
    }


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    make_sqlite(os.path.join(outdir, "jupyterhub.sqlite"))
    with open(os.path.join(outdir, "seed.json"), "w") as f:
        json.dump(seed(), f, indent=1)
    print(os.path.join(outdir, "seed.json"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make-seed.py OUTDIR")
    main(sys.argv[1])
