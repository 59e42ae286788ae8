"""skydeck.lab in a real lab spawned by a real hub (``skydeck up``), with its dask-gateway."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from support.hats_check import cone_ids, nearest_pairs, primary_catalog_dir, read_hats_table
from support.hub import RunningHub
from support.lab import KernelError, LabSession

pytestmark = pytest.mark.slow

GATEWAY = "/services/dask-gateway/api/v1"


@pytest.fixture(scope="module")
def lab_hub(hub_factory: Callable[..., RunningHub], mini_release: Path) -> RunningHub:
    """A hub serving the mini release; gateway clusters small (1 thread, 1 GiB workers)."""
    return hub_factory(
        release=mini_release,
        env={
            "SKYDECK_GATEWAY_WORKER_CORES": "1",
            "SKYDECK_GATEWAY_ORPHAN_CHECK_PERIOD": "2",
            "SKYDECK_GATEWAY_ORPHAN_GRACE": "4",
        },
    )


@pytest.fixture(scope="module")
def alice(lab_hub: RunningHub) -> Iterator[LabSession]:
    url = lab_hub.start_server("alice")
    session = LabSession(url, lab_hub.user_token("alice")).start()
    yield session
    session.shutdown()


def _json(session: LabSession, code: str, timeout: float = 300) -> Any:
    out = session.execute(code, timeout=timeout)
    return json.loads(out["stdout"].strip().splitlines()[-1])


def _clusters(hub: RunningHub, user: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"jupyterhub {hub.user_token(user)}"}
    response = requests.get(f"{hub.url}{GATEWAY}/clusters/", headers=headers, timeout=30)
    response.raise_for_status()
    return list(response.json().values())


def _dask_usage(hub: RunningHub, user: str) -> dict[str, dict[str, Any]]:
    """The Dask sessions the quota service has open for ``user``, by cluster name."""
    headers = {"Authorization": f"token {hub.user_token(user)}"}
    url = f"{hub.url}/services/quota/api/users/{user}/status"
    response = requests.get(url, headers=headers, timeout=30)
    response.raise_for_status()
    running = response.json()["usage"]["running"]
    return {s["key"]: s for s in running if s["source"] == "dask"}


def _wait_for(get: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    value = get()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(1)
        value = get()
    return value


def test_lab_gets_the_discovery_environment(alice: LabSession, lab_hub: RunningHub):
    found = _json(alice, "import json, skydeck.lab as sl; print(json.dumps(sl.where()))")
    assert found["user"] == "alice"
    assert found["dask-gateway"] == f"{lab_hub.url}/services/dask-gateway/"
    assert Path(found["release"]) == lab_hub.data_dir / "release"


def test_cone_search_in_the_lab_equals_brute_force(alice: LabSession, mini_release: Path):
    ra, dec, radius = 56.3, -29.6, 900.0
    found = _json(
        alice,
        "import json\nfrom skydeck.lab import open_catalog\n"
        f"rows = open_catalog('Object').cone_search(ra={ra}, dec={dec}, radius_arcsec={radius})"
        ".compute()\n"
        "print(json.dumps(sorted(int(i) for i in rows['objectId'])))",
    )
    table = read_hats_table(primary_catalog_dir(mini_release / "hats" / "Object"))
    expected = cone_ids(table, ra, dec, radius)
    assert expected
    assert found == expected


def test_gateway_cluster_crossmatch_isolation_and_cleanup(
    lab_hub: RunningHub, alice: LabSession, mini_release: Path
):
    result = _json(
        alice,
        """
import json
from skydeck.lab import get_dask_client, open_catalog
client = get_dask_client(n_workers=2)
workers = client.scheduler_info()["workers"].values()
matched = open_catalog("Object").crossmatch(
    open_catalog("gaia_dr3"), radius_arcsec=1.0, n_neighbors=1
).compute()
print(json.dumps({
    "cluster": client.cluster.name,
    "workers": len(workers),
    "threads": sorted(w["nthreads"] for w in workers),
    "dashboard": client.dashboard_link,
    "pairs": sorted(zip(matched["objectId_Object"].astype(int).tolist(),
                        matched["source_id_gaia_dr3"].astype(int).tolist())),
}))
""",
    )
    name = result["cluster"]
    assert result["workers"] == 2
    assert result["threads"] == [1, 1]
    assert result["dashboard"].startswith(f"{lab_hub.url}/services/dask-gateway/clusters/{name}")
    left = read_hats_table(primary_catalog_dir(mini_release / "hats" / "Object"))
    right = read_hats_table(primary_catalog_dir(mini_release / "hats" / "gaia_dr3"))
    assert [tuple(p) for p in result["pairs"]] == nearest_pairs(left, right, 1.0)

    # The cluster is alice's, on the gateway.
    assert [c["name"] for c in _clusters(lab_hub, "alice")] == [name]
    # Bob can neither see it nor connect to it.
    assert _clusters(lab_hub, "bob") == []
    bob = {"Authorization": f"jupyterhub {lab_hub.user_token('bob')}"}
    response = requests.get(f"{lab_hub.url}{GATEWAY}/clusters/{name}", headers=bob, timeout=30)
    assert response.status_code in (403, 404)
    response = requests.delete(f"{lab_hub.url}{GATEWAY}/clusters/{name}", headers=bob, timeout=30)
    assert response.status_code in (403, 404)
    assert [c["name"] for c in _clusters(lab_hub, "alice")] == [name]
    # No token, no gateway.
    assert requests.get(f"{lab_hub.url}{GATEWAY}/clusters/", timeout=30).status_code == 401
    # The quota service is told what the cluster holds (scheduler + 2 workers of 1 core).
    # Accounting is periodic: the first record may predate the workers joining.
    usage = _wait_for(
        lambda: _dask_usage(lab_hub, "alice"),
        lambda u: name in u and u[name]["cpu"] == 3,
    )
    assert usage[name]["cpu"] == 3
    assert usage[name]["workers"] in (None, 2)

    # A second cluster is beyond alice's limit (one cluster), and the error says what to do.
    with pytest.raises(KernelError, match=r"LimitReachedError.*shutdown_dask_clusters"):
        alice.execute("get_dask_client(n_workers=1)")

    # Shutting the kernel down stops the cluster.
    alice.shutdown()
    deadline = time.monotonic() + 90
    while _clusters(lab_hub, "alice") and time.monotonic() < deadline:
        time.sleep(1)
    assert _clusters(lab_hub, "alice") == []
    assert _wait_for(lambda: _dask_usage(lab_hub, "alice"), lambda u: not u) == {}
    alice.start()  # a fresh kernel for the tests after this one


def test_too_many_workers_is_refused(lab_hub: RunningHub, alice: LabSession):
    with pytest.raises(KernelError, match=r"LimitReachedError.*fewer workers"):
        alice.execute("from skydeck.lab import get_dask_client\nget_dask_client(n_workers=50)")
    deadline = time.monotonic() + 60
    while _clusters(lab_hub, "alice") and time.monotonic() < deadline:
        time.sleep(1)
    assert _clusters(lab_hub, "alice") == []


def test_clusters_without_a_lab_are_reaped(lab_hub: RunningHub):
    """carol has no lab: a cluster she starts over the REST API is stopped after the grace."""
    carol = {"Authorization": f"jupyterhub {lab_hub.user_token('carol')}"}
    response = requests.post(
        f"{lab_hub.url}{GATEWAY}/clusters/", headers=carol, json={"cluster_options": {}}, timeout=60
    )
    assert response.status_code == 201, response.text
    name = response.json()["name"]
    assert [c["name"] for c in _clusters(lab_hub, "carol")] == [name]
    deadline = time.monotonic() + 90
    while _clusters(lab_hub, "carol") and time.monotonic() < deadline:
        time.sleep(1)
    assert _clusters(lab_hub, "carol") == []
    assert "has no running lab" in lab_hub.log_path.read_text()


def test_dask_sidebar_and_dashboards_work_in_the_lab(lab_hub: RunningHub):
    """dask-labextension's NEW makes a gateway cluster; both kinds of dashboard are reachable."""
    url = lab_hub.start_server("dave")
    token = lab_hub.user_token("dave")
    auth = {"Authorization": f"token {token}"}
    # The sidebar's NEW button (dask-labextension's REST API in the lab server).
    response = requests.put(f"{url}/dask/clusters", headers=auth, timeout=180)
    assert response.status_code == 200, response.text
    model = response.json()
    try:
        (cluster,) = _clusters(lab_hub, "dave")  # a gateway cluster of dave's
        link = model["dashboard_link"]
        assert link.startswith(f"{lab_hub.url}/services/dask-gateway/clusters/{cluster['name']}/")
        dashboard = requests.get(link, timeout=60)
        assert dashboard.status_code == 200
        assert "Dask" in dashboard.text
    finally:
        requests.delete(f"{url}/dask/clusters/{model['id']}", headers=auth, timeout=60)
    deadline = time.monotonic() + 60
    while _clusters(lab_hub, "dave") and time.monotonic() < deadline:
        time.sleep(1)
    assert _clusters(lab_hub, "dave") == []

    # A LocalCluster's dashboard goes through jupyter-server-proxy under the lab's URL.
    session = LabSession(url, token).start()
    try:
        link = _json(
            session,
            "import dask, json, warnings\nfrom skydeck.lab import get_dask_client\n"
            "warnings.simplefilter('ignore')\n"
            "with dask.config.set({'skydeck.dask.use-gateway': False}):\n"
            "    client = get_dask_client(n_workers=1)\n"
            "print(json.dumps(client.dashboard_link))",
        )
        assert link.startswith("/user/dave/proxy/")
        dashboard = requests.get(f"{lab_hub.url}{link}", headers=auth, timeout=60)
        assert dashboard.status_code == 200
        assert "Dask" in dashboard.text
    finally:
        session.shutdown()
        lab_hub.stop_server("dave")
