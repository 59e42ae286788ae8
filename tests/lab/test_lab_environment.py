"""A lab's environment, as the spawner gives it, is readable by the libraries users call.

The lab is spawned through the real hub (``skydeck up`` serving the tiny release)
with the options the spawn form sends (none when a single size is offered), once
per size the default quota offers.  Labs used to get JupyterHub's
``CPU_LIMIT="2.0"``, and lsst.resources (Butler reads) parses it with ``int()``:
tutorials 03a, 04a and 05 failed for users while the tests, whose kernels had
another environment, stayed green.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from skydeck.hub.quota.model import DEFAULT_SIZES, GIB
from support.hub import RunningHub
from support.lab import DEFAULT_OFFERED_SIZES, LabSession, sizes_offered, spawn_options

pytestmark = pytest.mark.slow

USER = "lab-environment"

#: Every variable the discovery contract (kernels/README.md) types as a whole number.
INTEGER_VARIABLES = ("CPU_LIMIT", "CPU_GUARANTEE", "MEM_LIMIT", "MEM_GUARANTEE")

READ_ENVIRONMENT = """
import json, os
print(json.dumps({k: v for k, v in os.environ.items()
                  if k.startswith(("SKYDECK_", "JUPYTERHUB_", "DASK_", "CPU_", "MEM_"))}))
"""

# What user code does in tutorials 03a/04a/05: a Butler on the release, and a read.
BUTLER_READ = """
import json
from lsst.daf.butler import Butler
from skydeck.catalog.release import ReleaseLayout
from skydeck.lab import get_butler
repo = str(ReleaseLayout.from_env().butler_repo)
butler = Butler.from_config(repo, collections=get_butler().collections.defaults)
ref = butler.query_datasets("deepCoadd", limit=1)[0]
image = butler.get(ref)
from lsst.resources.utils import _get_default_num_workers
print(json.dumps({"shape": list(image.image.array.shape), "workers": _get_default_num_workers()}))
"""


@pytest.fixture(scope="module", params=DEFAULT_OFFERED_SIZES)
def lab(release_hub: RunningHub, request: pytest.FixtureRequest) -> Iterator[LabSession]:
    size: str = request.param
    token = release_hub.user_token(USER)
    offered = sizes_offered(release_hub.url, USER, token)
    assert offered == DEFAULT_OFFERED_SIZES
    url = release_hub.start_server(USER, **spawn_options(size, offered))
    session = LabSession(url, token).start()
    yield session
    session.shutdown()
    release_hub.stop_server(USER)


def test_resource_variables_parse_as_integers_and_floats(lab: LabSession) -> None:
    env = json.loads(lab.execute(READ_ENVIRONMENT)["stdout"])
    assert "CPU_LIMIT" in env and "MEM_LIMIT" in env, sorted(env)
    for name in INTEGER_VARIABLES:
        if name in env:
            assert int(env[name]) == float(env[name]) >= 1, (name, env[name])
    assert env["SKYDECK_LAB_SIZE"] in DEFAULT_OFFERED_SIZES
    idle = env.get("SKYDECK_IDLE_TIMEOUT")
    assert idle is None or int(idle) > 0


def test_skydeck_lab_reads_the_size_the_user_got(lab: LabSession) -> None:
    """The LocalCluster fallback is sized from these (skydeck.lab._dask)."""
    out = lab.execute(
        "import json, os\n"
        "from skydeck.lab._discovery import Discovery\n"
        "found = Discovery.from_env()\n"
        "print(json.dumps([os.environ['SKYDECK_LAB_SIZE'], found.cpu_limit, found.mem_limit]))"
    )
    name, cpu, memory = json.loads(out["stdout"])
    (size,) = (s for s in DEFAULT_SIZES if s.name == name)
    assert (cpu, memory) == (size.cpu, size.memory_gib * GIB)


def test_dask_reads_the_lab_environment(lab: LabSession) -> None:
    """dask.config turns every DASK_* variable into configuration at import."""
    out = lab.execute("import dask, distributed; print(dask.config.get('distributed.comm'))")
    assert out["stdout"].strip()


def test_butler_reads_work_in_the_lab(lab: LabSession) -> None:
    found = json.loads(lab.execute(BUTLER_READ, timeout=300)["stdout"].strip().splitlines()[-1])
    assert len(found["shape"]) == 2 and min(found["shape"]) > 0
    assert found["workers"] >= 3  # the lab's CPU_LIMIT (>= 1) plus two
