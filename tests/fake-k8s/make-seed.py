#!/usr/bin/python3
"""Write a standard seed for the fake: two Zero-to-JupyterHub hubs and a Nublado layout.

    /usr/bin/python3 tests/fake-k8s/make-seed.py OUTDIR   -> OUTDIR/seed.json, OUTDIR/jupyterhub.sqlite
    /usr/bin/python3 tests/fake-k8s/make-seed.py --layout z2jh [--db-url URL] [--db-password P] OUTDIR
        -> the same, plus a zero-to-jupyterhub release in namespace jhub (z2jh_seed, below)

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

import base64
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


Z2JH_NAMESPACE = "jhub"
Z2JH_DB_URL = "postgresql+psycopg2://hub@postgres.jhub.svc:5432/jupyterhub"
Z2JH_USERS = ("alice", "bob", "jos-c3-a9")  # josé, escaped as KubeSpawner names pods


def z2jh_values(db_url):
    """The chart's values as the hub reads them (ConfigMap hub, key values.yaml), trimmed."""
    return ("# rendered by the jupyterhub chart 3.3.7\n"
            "hub:\n"
            "  db:\n"
            "    type: postgres\n"
            "    url: %s\n"
            "    upgrade: null\n"
            "  config:\n"
            "    JupyterHub:\n"
            "      admin_access: true\n"
            "proxy:\n"
            "  https:\n"
            "    enabled: true\n"
            "    type: letsencrypt\n"
            "singleuser:\n"
            "  storage:\n"
            "    type: dynamic\n" % db_url)


def z2jh_seed(db_url=Z2JH_DB_URL, password="hub-db-password"):
    """A zero-to-jupyterhub release in namespace jhub beside the standard layout.

    Deployments hub (component=hub), proxy (component=proxy, 2 replicas) and autohttps
    (component=autohttps); ConfigMap hub (values.yaml: hub.db.type postgres, hub.db.url) and Secret
    hub (hub.db.password); user pods jupyter-<user> (component=singleuser-server,
    hub.jupyter.org/username). Decoys that must survive a wipe of jhub: jupyter-decoy (no user
    server label), a continuous-image-puller pod, a user-scheduler pod, and a user server pod of
    the same name in namespace jhub-staging.
    """
    doc = seed()
    base = {"app": "jupyterhub", "release": "jhub"}
    doc["namespaces"] += [{"name": Z2JH_NAMESPACE, "labels": {"app.kubernetes.io/part-of": "jupyterhub"}},
                          "jhub-staging"]

    def labels(component, **more):
        return dict(base, component=component, **more)

    doc["deployments"] += [
        {"namespace": Z2JH_NAMESPACE, "name": "hub", "labels": labels("hub"), "container": "hub", "image": HUB_IMAGE,
         "env": {"PGPASSWORD": "from-secret-hub"}},
        {"namespace": Z2JH_NAMESPACE, "name": "proxy", "labels": labels("proxy"), "container": "chp",
         "image": "quay.io/jupyterhub/configurable-http-proxy:4.6.1", "replicas": 2},
        {"namespace": Z2JH_NAMESPACE, "name": "autohttps", "labels": labels("autohttps"), "container": "traefik",
         "image": "traefik:v2.11.0"},
        {"namespace": Z2JH_NAMESPACE, "name": "user-scheduler", "labels": labels("user-scheduler"),
         "container": "kube-scheduler", "image": "registry.k8s.io/kube-scheduler:v1.28.8"},
    ]

    def user_pod(namespace, user):
        return {"namespace": namespace, "name": "jupyter-" + user,
                "labels": labels("singleuser-server", **{"hub.jupyter.org/username": user,
                                                        "hub.jupyter.org/servername": ""}),
                "container": "notebook", "image": "quay.io/jupyterhub/k8s-singleuser-sample:3.3.7"}

    doc["pods"] += [user_pod(Z2JH_NAMESPACE, u) for u in Z2JH_USERS] + [
        user_pod("jhub-staging", "alice"),
        {"namespace": Z2JH_NAMESPACE, "name": "jupyter-decoy", "labels": dict(base, component="decoy"),
         "container": "notebook", "image": "quay.io/jupyterhub/k8s-singleuser-sample:3.3.7"},
        {"namespace": Z2JH_NAMESPACE, "name": "continuous-image-puller-7xq2p", "labels": labels("continuous-image-puller"),
         "container": "pause", "image": "registry.k8s.io/pause:3.9"},
    ]
    doc["objects"] += [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hub", "namespace": Z2JH_NAMESPACE},
         "data": {"values.yaml": z2jh_values(db_url), "checksum_hook-image-puller": "c3a1"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hub", "namespace": Z2JH_NAMESPACE},
         "type": "Opaque", "data": {"hub.db.password": base64.b64encode(password.encode()).decode(),
                                    "hub.config.ConfigurableHTTPProxy.auth_token": "c2VjcmV0LXByb3h5LXRva2Vu"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "proxy-public", "namespace": Z2JH_NAMESPACE},
         "spec": {"selector": labels("autohttps"), "ports": [{"name": "https", "port": 443}]}},
    ]
    return doc


def main(argv):
    layout, db_url, password = "standard", Z2JH_DB_URL, "hub-db-password"
    args = list(argv)
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--layout" and args:
            layout = args.pop(0)
        elif opt == "--db-url" and args:
            db_url = args.pop(0)
        elif opt == "--db-password" and args:
            password = args.pop(0)
        else:
            sys.exit("make-seed.py: unknown option " + opt)
    if len(args) != 1 or layout not in ("standard", "z2jh"):
        sys.exit("usage: make-seed.py [--layout standard|z2jh [--db-url URL] [--db-password P]] OUTDIR")
    outdir = args[0]
    os.makedirs(outdir, exist_ok=True)
    make_sqlite(os.path.join(outdir, "jupyterhub.sqlite"))
    with open(os.path.join(outdir, "seed.json"), "w") as f:
        json.dump(seed() if layout == "standard" else z2jh_seed(db_url, password), f, indent=1)
    print(os.path.join(outdir, "seed.json"))


if __name__ == "__main__":
    main(sys.argv[1:])
