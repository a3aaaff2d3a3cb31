"""One real Kubernetes control plane for every cluster test of the session (see tests/helpers/kubecluster.py).

Started on first use only, so a run without cluster tests pays nothing; skipped, saying why, where the binaries are
absent. The fixture also plays the kubelet of one node (no kubelet or container runtime exists here).
"""

from __future__ import annotations

import pytest

from kubecluster import ControlPlane, Kubelet, find_binaries


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    """etcd + kube-apiserver + controller-manager + scheduler on loopback, and a played Ready node."""
    binaries, why = find_binaries()
    if binaries is None:
        pytest.skip(f"no Kubernetes control plane binaries: {why}")
    if binaries.controller_manager is None or binaries.scheduler is None:
        pytest.skip(f"{binaries.source} holds no kube-controller-manager and kube-scheduler (Jobs need them)")
    cp = ControlPlane(tmp_path_factory.mktemp("k8s"), binaries)
    try:
        cp.start()
        kubelet = Kubelet(cp.api_client()).start()
    except Exception:
        cp.stop()
        raise
    yield cp
    kubelet.stop()
    cp.stop()
