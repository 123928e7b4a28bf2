#!/usr/bin/python3
"""The fake's claims, volumes and classes through Debian's python3-kubernetes.

    /usr/bin/python3 tests/fake-k8s/storage_checks.py DIR

DIR is a running fake started with make-seed.py's seed (default StorageClass `standard`). Prints
one line per check, as client_checks.py does ("ok<TAB>description" or "not ok<TAB>description<TAB>
detail"); tests/33-fake-k8s-storage.t turns them into TAP. Works in its own namespace, storage-py.
"""

import os
import sys
import time
import traceback

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kubernetes import client, config  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

from fakek8s.client import read_env  # noqa: E402

ENV = read_env(sys.argv[1])
NS = "storage-py"
api_client = config.new_client_from_config(config_file=ENV["KUBECONFIG_FILE"], context="token")
core = client.CoreV1Api(api_client)
storage_api = client.StorageV1Api(api_client)
state = {}


def report(ok, description, detail=""):
    line = ("ok" if ok else "not ok") + "\t" + description
    if not ok:
        line += "\t" + str(detail).replace("\t", " ").replace("\n", " | ")[:2000]
    print(line, flush=True)


def check(description):
    def run(fn):
        try:
            result = fn()
            ok, detail = result if isinstance(result, tuple) else (bool(result), "")
        except Exception as e:
            ok, detail = False, "%r %s" % (e, traceback.format_exc().splitlines()[-3:])
        report(ok, description, detail)
        return fn
    return run


def wait_for(predicate, timeout=10, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def claim_body(name, volume_name=None, storage="1Gi"):
    """What KubeSpawner's get_pvc_manifest makes (labels, annotations), plus volume_name when re-attaching."""
    return client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name=name, labels={"component": "singleuser-storage",
                                                        "app.kubernetes.io/component": "singleuser-server",
                                                        "hub.jupyter.org/username": name},
                                     annotations={"hub.jupyter.org/username": name}),
        spec=client.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"], storage_class_name="standard", volume_name=volume_name,
            resources=client.V1ResourceRequirements(requests={"storage": storage})))


def phase_of_claim(name):
    try:
        return core.read_namespaced_persistent_volume_claim(name, NS).status.phase
    except ApiException as e:
        return e.status


core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))


@check("python3-kubernetes: list_storage_class finds the default class standard (Delete, Immediate)")
def _():
    classes = {sc.metadata.name: sc for sc in storage_api.list_storage_class().items}
    sc = classes.get("standard")
    return (sc is not None and sc.reclaim_policy == "Delete" and sc.volume_binding_mode == "Immediate"
            and sc.metadata.annotations.get("storageclass.kubernetes.io/is-default-class") == "true"), classes


@check("python3-kubernetes: create_namespaced_persistent_volume_claim x3, each provisioned and Bound")
def _():
    created = [core.create_namespaced_persistent_volume_claim(NS, claim_body("py-claim-%d" % i)) for i in range(3)]
    phases = [c.status.phase for c in created]
    bound = wait_for(lambda: all(phase_of_claim("py-claim-%d" % i) == "Bound" for i in range(3)))
    claim = core.read_namespaced_persistent_volume_claim("py-claim-0", NS)
    state["uid"], state["pv"] = claim.metadata.uid, claim.spec.volume_name
    return (phases == ["Pending"] * 3 and bound and claim.spec.volume_name == "pvc-" + claim.metadata.uid
            and claim.status.capacity == {"storage": "1Gi"}
            and "kubernetes.io/pvc-protection" in claim.metadata.finalizers), (phases, claim)


@check("python3-kubernetes: list_namespaced_persistent_volume_claim by label, two pages with limit/continue")
def _():
    first = core.list_namespaced_persistent_volume_claim(NS, label_selector="component=singleuser-storage", limit=2)
    second = core.list_namespaced_persistent_volume_claim(NS, label_selector="component=singleuser-storage", limit=2,
                                                          _continue=first.metadata._continue)
    names = [c.metadata.name for c in first.items + second.items]
    none = core.list_namespaced_persistent_volume_claim(NS, label_selector="component=hub")
    return (names == ["py-claim-0", "py-claim-1", "py-claim-2"] and first.metadata.remaining_item_count == 1
            and not second.metadata._continue and none.items == []), (names, first.metadata)


@check("python3-kubernetes: read_persistent_volume: Bound, claimRef to the claim, reclaim policy Delete")
def _():
    pv = core.read_persistent_volume(state["pv"])
    ref = pv.spec.claim_ref
    return (pv.status.phase == "Bound" and ref.name == "py-claim-0" and ref.namespace == NS
            and ref.uid == state["uid"] and ref.kind == "PersistentVolumeClaim"
            and pv.spec.persistent_volume_reclaim_policy == "Delete" and pv.spec.storage_class_name == "standard"
            and pv.metadata.annotations.get("pv.kubernetes.io/provisioned-by") == "k8s.io/minikube-hostpath"
            and "kubernetes.io/pv-protection" in pv.metadata.finalizers), pv


@check("python3-kubernetes: patch_persistent_volume sets reclaim policy Retain and a label")
def _():
    pv = core.patch_persistent_volume(state["pv"], {"metadata": {"labels": {"runbook/keep": "yes"}},
                                                    "spec": {"persistentVolumeReclaimPolicy": "Retain"}})
    listed = core.list_persistent_volume(label_selector="runbook/keep=yes").items
    return (pv.spec.persistent_volume_reclaim_policy == "Retain" and pv.metadata.labels == {"runbook/keep": "yes"}
            and [p.metadata.name for p in listed] == [state["pv"]]), pv


@check("python3-kubernetes: delete_namespaced_persistent_volume_claim: claim gone, volume Released, claimRef kept")
def _():
    answer = core.delete_namespaced_persistent_volume_claim("py-claim-0", NS)
    gone = wait_for(lambda: phase_of_claim("py-claim-0") == 404)
    pv = wait_for(lambda: (lambda p: p if p.status.phase == "Released" else None)(
        core.read_persistent_volume(state["pv"])))
    return (isinstance(answer, client.V1PersistentVolumeClaim) and answer.metadata.deletion_timestamp is not None
            and gone and pv and pv.spec.claim_ref.uid == state["uid"]), (answer.metadata, pv)


@check("python3-kubernetes: JSON patch removing claimRef makes the volume Available")
def _():
    core.patch_persistent_volume(state["pv"], [{"op": "remove", "path": "/spec/claimRef"}])
    pv = wait_for(lambda: (lambda p: p if p.status.phase == "Available" else None)(
        core.read_persistent_volume(state["pv"])))
    return pv and pv.spec.claim_ref is None, pv


@check("python3-kubernetes: create_namespaced_persistent_volume_claim with volume_name binds to that volume")
def _():
    core.create_namespaced_persistent_volume_claim(NS, claim_body("py-claim-0", volume_name=state["pv"]))
    bound = wait_for(lambda: phase_of_claim("py-claim-0") == "Bound")
    claim = core.read_namespaced_persistent_volume_claim("py-claim-0", NS)
    pv = core.read_persistent_volume(state["pv"])
    return (bound and claim.spec.volume_name == state["pv"] and pv.status.phase == "Bound"
            and pv.spec.claim_ref.uid == claim.metadata.uid != state["uid"]), (claim, pv)


@check("python3-kubernetes: a claim that cannot bind (volume bound to another claim) stays Pending")
def _():
    core.create_namespaced_persistent_volume_claim(NS, claim_body("py-thief", volume_name=state["pv"]))
    time.sleep(0.5)
    phase = phase_of_claim("py-thief")
    core.delete_namespaced_persistent_volume_claim("py-thief", NS)
    pv = core.read_persistent_volume(state["pv"])
    gone = wait_for(lambda: phase_of_claim("py-thief") == 404)
    return phase == "Pending" and pv.spec.claim_ref.name == "py-claim-0" and gone, (phase, pv.spec.claim_ref)


@check("python3-kubernetes: list_persistent_volume_claim_for_all_namespaces with a field selector")
def _():
    claims = core.list_persistent_volume_claim_for_all_namespaces(field_selector="metadata.name=py-claim-1").items
    return [(c.metadata.namespace, c.metadata.name) for c in claims] == [(NS, "py-claim-1")], claims


@check("python3-kubernetes: an invalid claim is a 422 with the real message")
def _():
    body = client.V1PersistentVolumeClaim(metadata=client.V1ObjectMeta(name="py-bad"),
                                          spec=client.V1PersistentVolumeClaimSpec())
    try:
        core.create_namespaced_persistent_volume_claim(NS, body)
    except ApiException as e:
        return e.status == 422 and 'PersistentVolumeClaim \\"py-bad\\" is invalid: [spec.accessModes: Required ' \
            'value: at least 1 access mode is required, spec.resources[storage]: Required value]' in e.body, e.body
    return False, "no error"
