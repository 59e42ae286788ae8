"""An idle lab stays light: nothing heavy is imported until a user calls for it.

Structural checks, not timed ones (the figures are in benchmarks/bench_lab.py):
what ``import skydeck.lab`` and the lab's server extension import in a fresh
interpreter, and what an idle Skydeck kernel of a lab spawned through the hub
has loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from support.hub import RunningHub
from support.lab import LabSession

#: Science and UI libraries that each cost megabytes; users import them by calling the API.
HEAVY = [
    "lsst.daf.butler",
    "lsst.resources",
    "lsdb",
    "hats",
    "dask",
    "distributed",
    "dask_gateway",
    "pyvo",
    "astropy",
    "pandas",
    "numpy",
    "pyarrow",
    "ipywidgets",
    "bokeh",
    "requests",
    "yaml",
    "skydeck.catalog",
    "skydeck.images",
]

NEW_MODULES = """
import json, sys
before = set(sys.modules)
for name in {setup!r}:
    __import__(name)
before = set(sys.modules)
for name in {names!r}:
    __import__(name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def _new_modules(names: list[str], setup: tuple[str, ...] = ()) -> list[str]:
    """Modules that importing ``names`` adds in a fresh interpreter (after ``setup``)."""
    code = NEW_MODULES.format(names=names, setup=setup)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    modules: list[str] = json.loads(result.stdout)
    return modules


def _third_party(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules} - set(sys.stdlib_module_names) - {"skydeck"}


def test_import_skydeck_lab_needs_only_the_standard_library():
    modules = _new_modules(["skydeck.lab"])
    assert "skydeck.lab" in modules
    assert _third_party(modules) == set(), "import skydeck.lab must stay cheap: import on use"
    assert not [m for m in modules if m.startswith("skydeck.") and ".lab" not in m]


def test_public_api_resolves_without_heavy_imports():
    """Every name in ``__all__`` is there at import; the libraries behind it load on call."""
    code = (
        "import json, sys, skydeck.lab as sl\n"
        "missing = [n for n in sl.__all__ if not hasattr(sl, n)]\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps([missing, heavy]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    missing, heavy = json.loads(result.stdout)
    assert missing == []
    assert heavy == []


def test_server_extension_adds_nothing_heavy_to_the_lab_server():
    """What ``skydeck.labextension`` adds to a Jupyter server process: its routes, psutil."""
    modules = _new_modules(
        ["skydeck.labextension", "skydeck.labextension._handlers"],
        setup=("jupyter_server.serverapp",),
    )
    assert "skydeck.labextension._handlers" in modules
    assert _third_party(modules) <= {"psutil"}


# --- an idle Skydeck kernel in a lab spawned through the hub, as users get it -------------


@pytest.fixture(scope="module")
def idle_kernel(hub: RunningHub) -> Iterator[LabSession]:
    user = "weigh"
    url = hub.start_server(user)
    session = LabSession(url, hub.user_token(user)).start()
    yield session
    session.shutdown()
    hub.stop_server(user)


@pytest.mark.slow
def test_idle_skydeck_kernel_has_nothing_heavy_loaded(idle_kernel: LabSession):
    """The kernel spec preloads skydeck.lab; start-up imports nothing a user has not asked for."""
    code = (
        "import json, sys\n"
        f"print(json.dumps([m for m in {HEAVY!r} + ['skydeck.lab'] if m in sys.modules]))"
    )
    loaded = json.loads(idle_kernel.execute(code)["stdout"])
    assert loaded == ["skydeck.lab"], f"an idle kernel should not hold {loaded[:-1]}"


@pytest.mark.slow
def test_first_use_loads_the_library_it_needs(idle_kernel: LabSession):
    """Laziness keeps behaviour: the API works, and only then is its library imported."""
    code = (
        "import json, sys, skydeck.lab as sl\n"
        "before = 'pyvo' in sys.modules\n"
        "service = sl.get_tap_service(check=False)\n"
        "print(json.dumps([before, 'pyvo' in sys.modules, type(service).__module__]))"
    )
    before, after, module = json.loads(idle_kernel.execute(code)["stdout"])
    assert (before, after) == (False, True)
    assert module.startswith("pyvo")
