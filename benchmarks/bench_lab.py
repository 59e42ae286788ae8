"""The Skydeck lab: idle weight, kernel start-up, first catalog result, crossmatch via dask-gateway.

Measured in a real lab spawned by a real hub (``skydeck up``) over a mini release
(synthetic HATS ``Object`` and ``gaia_dr3``, sizes below), with one Skydeck kernel
started through the lab's Jupyter server API, as ``skydeck check`` and JupyterLab do.
Baselines from the same run:
- idle weight (RSS, USS, PSS of the ``jupyterhub-singleuser`` server and of the idle kernel,
  issue 14's goal: under 250 MiB per lab) against a bare ``python`` process, a bare ipykernel
  (``jupyter_client``, the ``python3`` kernel spec) and a bare Jupyter server (no extensions);
  measured twice: a lab used through the API only (as ``skydeck check`` bots use it) and a lab
  opened in Chromium after the login form, with one Skydeck notebook open (as people use it);
- where the server's and the kernel's memory goes: RSS added by each import, in start-up
  order, in a fresh interpreter (the lab's own code is ``skydeck.labextension`` and
  ``skydeck.lab``; everything else is upstream Jupyter);
- ``import skydeck.lab`` against ``python -c pass`` (the library must stay light);
- kernel start to first result through the lab against a bare ipykernel's;
- kernel start to first ``open_catalog`` result against kernel start to first result;
- an lsdb crossmatch on a ``get_dask_client()`` gateway cluster (2 workers x 1 thread)
  against the same crossmatch on a plain ``LocalCluster`` with the same workers,
  started in the same kernel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
from jupyter_client.manager import KernelManager
from playwright.sync_api import Browser, expect, sync_playwright
from runner import Report

from support.browser import CHROMIUM_ARGS, chromium_path
from support.hub import RunningHub, free_port, start_hub
from support.lab import LabSession
from support.mini_release import MiniSize, build_mini_release

REPEATS = int(os.environ.get("SKYDECK_BENCH_REPEATS", "3"))
IDLE_SECONDS = 10  # let start-up garbage settle before an idle process is measured
MiB = 2**20
MEMORY = ("rss", "uss", "pss")

# Imports in the order a lab server makes them (rfc3987_syntax is jupyter_server's, through
# jupyter_events -> jsonschema's format checkers; counted apart because it alone is large).
SERVER_IMPORTS = [
    "rfc3987_syntax",
    "jupyter_server.serverapp",
    "jupyterhub.singleuser",
    "jupyterlab.labapp",
    "jupyter_server_terminals",
    "jupyter_lsp",
    "jupyter_server_proxy",
    "nbgitpuller",
    "dask_labextension",
    "skydeck.labextension",
]
KERNEL_IMPORTS = ["ipykernel.kernelapp", "skydeck.lab"]
# What-if: the same lab without rfc3987-syntax (as if not installed: jsonschema then skips
# its "iri" format checks).  Measures what removing that one dependency would save.
WITHOUT_RFC3987 = "import sys\nsys.modules['rfc3987_syntax'] = None  # import fails as if absent\n"
IMPORT_DELTAS = """
import importlib, json, sys, time, warnings
import psutil
warnings.simplefilter("ignore")
process, out = psutil.Process(), {}
for name in sys.argv[1:]:
    before, start = process.memory_info().rss, time.perf_counter()
    importlib.import_module(name)
    out[name] = [(process.memory_info().rss - before) / 2**20, time.perf_counter() - start]
print(json.dumps(out))
"""
SIZE = MiniSize(objects=60_000, matched=6_000, extra=3_000, partition_rows=5_000)

CONE = (
    "from skydeck.lab import open_catalog\n"
    "rows = open_catalog('Object').cone_search(ra=56.0, dec=-30.0, radius_arcsec=600).compute()\n"
    "print(len(rows))"
)

CROSSMATCH = """
import json, time
from distributed import Client, LocalCluster
from skydeck.lab import get_dask_client, open_catalog, shutdown_dask_clusters

def crossmatch():
    objects, stars = open_catalog("Object"), open_catalog("gaia_dr3")
    start = time.perf_counter()
    rows = len(objects.crossmatch(stars, radius_arcsec=1.0, n_neighbors=1).compute())
    return time.perf_counter() - start, rows

out = {}
start = time.perf_counter()
client = get_dask_client(n_workers=2)
out["gateway_start"] = time.perf_counter() - start
out["gateway"] = [crossmatch() for _ in range(REPEATS)]
client.close()
shutdown_dask_clusters()

start = time.perf_counter()
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                       dashboard_address="127.0.0.1:0")
client = Client(cluster)
client.wait_for_workers(2)
out["local_start"] = time.perf_counter() - start
out["local"] = [crossmatch() for _ in range(REPEATS)]
client.close()
cluster.close()
print(json.dumps(out))
"""


def _import_time(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def _kernel(url: str, token: str, code: str) -> tuple[float, LabSession, str]:
    start = time.perf_counter()
    session = LabSession(url, token).start()
    out = session.execute(code, timeout=600)
    return time.perf_counter() - start, session, out["stdout"]


def _memory(process: psutil.Process) -> dict[str, float]:
    info = process.memory_full_info()
    return {kind: getattr(info, kind) / MiB for kind in MEMORY}


def _wait_ready(url: str, token: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/status", params={"token": token}, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer in {timeout}s")


def _bare_python() -> dict[str, float]:
    """An idle ``python`` doing nothing: the floor every process pays."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(1)
        return _memory(psutil.Process(proc.pid))
    finally:
        proc.kill()
        proc.wait()


def _bare_ipykernel() -> tuple[float, dict[str, float]]:
    """The ``python3`` kernel spec started by jupyter_client: start to first result, idle memory."""
    manager = KernelManager(kernel_name="python3")
    start = time.perf_counter()
    manager.start_kernel()
    client = manager.blocking_client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=120)
        reply = client.execute_interactive("1", timeout=120)
        assert reply["content"]["status"] == "ok", reply
        seconds = time.perf_counter() - start
        time.sleep(IDLE_SECONDS)
        assert manager.provisioner is not None
        pid = manager.provisioner.pid  # type: ignore[attr-defined]
        return seconds, _memory(psutil.Process(pid))
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _bare_server(home: Path) -> tuple[float, dict[str, float]]:
    """A Jupyter server with no extension at all (no config read): start to ready, idle memory."""
    port, token = free_port(), "benchmark"
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "JUPYTER_NO_CONFIG": "1"}
    env["JUPYTER_CONFIG_DIR"] = str(config)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            "--ServerApp.allow_root=True",
            f"--ServerApp.root_dir={home}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", token)
        seconds = time.perf_counter() - start
        time.sleep(IDLE_SECONDS)
        return seconds, _memory(psutil.Process(proc.pid))
    finally:
        proc.terminate()
        proc.wait()


def _import_deltas(names: list[str]) -> dict[str, tuple[float, float]]:
    """MiB of RSS and seconds each import adds, in order, in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_DELTAS, *names], capture_output=True, text=True, check=True
    )
    deltas: dict[str, tuple[float, float]] = json.loads(result.stdout.strip().splitlines()[-1])
    return deltas


def _lab_processes(hub: RunningHub, user: str) -> tuple[psutil.Process, psutil.Process]:
    """The user's ``jupyterhub-singleuser`` process and its one kernel."""
    for proc in hub.descendants():
        try:
            if any("jupyterhub-singleuser" in part for part in proc.cmdline()) and (
                proc.environ().get("JUPYTERHUB_USER") == user
            ):
                kernels = [
                    child
                    for child in proc.children(recursive=True)
                    if "ipykernel_launcher" in child.cmdline()
                ]
                assert len(kernels) == 1, f"expected one kernel, found {kernels}"
                return proc, kernels[0]
        except psutil.Error:
            continue
    raise AssertionError(f"no lab process of {user} under the hub")


def _idle_lab(hub: RunningHub, user: str) -> dict[str, float]:
    """Spawn ``user``'s lab, start one Skydeck kernel through its API, measure it idle."""
    start = time.perf_counter()
    url = hub.start_server(user)
    figures = {"spawn": time.perf_counter() - start}
    token = hub.user_token(user)
    start = time.perf_counter()
    session = LabSession(url, token).start()
    session.execute("1")
    figures["first_result"] = time.perf_counter() - start
    try:
        time.sleep(IDLE_SECONDS)
        server, kernel = _lab_processes(hub, user)
        for part, process in (("server", server), ("kernel", kernel)):
            for kind, value in _memory(process).items():
                figures[f"{part}_{kind}"] = value
    finally:
        session.shutdown()
        hub.stop_server(user)
    return figures


def _idle_lab_in_browser(hub: RunningHub, browser: Browser) -> dict[str, float]:
    """Log in with the form, let the hub spawn the lab, open a Skydeck notebook, measure idle.

    JupyterLab's start-up requests (settings, translations, nbconvert formats, the Dask
    sidebar's cluster list, the status bar) load code the API-only lab never loads.
    """
    creds = hub.credentials
    user = creds["admin_user"]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(180_000)
    try:
        page.goto(f"{hub.url}/hub/login")
        page.fill("#username_input", user)
        page.fill("#password_input", creds["admin_password"])
        page.click("#login_submit")
        page.wait_for_url(f"**/user/{user}/lab**")
        page.goto(f"{hub.url}/user/{user}/lab?reset")  # a fresh workspace: the launcher
        card = page.locator(".jp-LauncherCard[data-category='Notebook']").first
        expect(card).to_be_visible(timeout=180_000)
        card.click()
        idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first
        expect(idle).to_be_attached(timeout=180_000)
        time.sleep(IDLE_SECONDS)
        server, kernel = _lab_processes(hub, user)
        return {
            f"{part}_{kind}": value
            for part, process in (("server", server), ("kernel", kernel))
            for kind, value in _memory(process).items()
        }
    finally:
        context.close()
        hub.stop_server(user)


def _hub_without_rfc3987(root: Path, release: Path) -> RunningHub:
    """A second ``skydeck up`` whose labs cannot import rfc3987_syntax (the what-if)."""
    site = root / "site"
    site.mkdir(parents=True)
    (site / "sitecustomize.py").write_text(WITHOUT_RFC3987)
    config = root / "what_if_config.py"
    config.write_text(f"c.Spawner.environment = {{'PYTHONPATH': {str(site)!r}}}\n")
    return start_hub(root / "data", release=release, extra_config=[config])


def _weight(report: Report, hub: RunningHub, what_if: RunningHub, home: Path) -> None:
    add = report.add
    python = [_bare_python() for _ in range(REPEATS)]
    ipykernels = [_bare_ipykernel() for _ in range(REPEATS)]
    servers = [_bare_server(home / f"bare{i}") for i in range(REPEATS)]
    labs = [_idle_lab(hub, f"idle{i}") for i in range(REPEATS)]
    leaner = [_idle_lab(what_if, f"lean{i}") for i in range(REPEATS)]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        opened = [_idle_lab_in_browser(hub, browser) for _ in range(REPEATS)]
        browser.close()
    for kind in MEMORY:
        unit, tag = "MiB", kind.upper()
        add(f"bare python, idle {tag}", unit, [m[kind] for m in python])
        add(f"bare ipykernel, idle {tag}", unit, [m[kind] for _, m in ipykernels])
        add(f"bare Jupyter server (no extensions), idle {tag}", unit, [m[kind] for _, m in servers])
        add(
            f"lab server (jupyterhub-singleuser), idle {tag}",
            unit,
            [lab[f"server_{kind}"] for lab in labs],
            baseline=f"bare Jupyter server (no extensions), idle {tag}",
        )
        add(
            f"Skydeck kernel, idle {tag}",
            unit,
            [lab[f"kernel_{kind}"] for lab in labs],
            baseline=f"bare ipykernel, idle {tag}",
        )
        bare = f"bare Jupyter server + bare ipykernel, idle {tag}"
        add(
            bare,
            unit,
            [s[kind] + k[kind] for (_, s), (_, k) in zip(servers, ipykernels, strict=True)],
        )
        add(
            f"idle lab total (server + one Skydeck kernel), {tag}",
            unit,
            [lab[f"server_{kind}"] + lab[f"kernel_{kind}"] for lab in labs],
            baseline=bare,
            target="< 250 MiB (issue 14)",
            note="USS: what one more lab adds; PSS: its fair share of shared pages",
        )
        add(
            f"what-if: lab server without rfc3987-syntax, idle {tag}",
            unit,
            [lab[f"server_{kind}"] for lab in leaner],
            baseline=f"lab server (jupyterhub-singleuser), idle {tag}",
            note="jupyter_events -> jsonschema imports it eagerly; a uv override could drop it",
        )
        add(
            f"lab server after JupyterLab opened in a browser, idle {tag}",
            unit,
            [lab[f"server_{kind}"] for lab in opened],
            baseline=f"lab server (jupyterhub-singleuser), idle {tag}",
        )
        add(
            f"idle lab total after JupyterLab opened in a browser, {tag}",
            unit,
            [lab[f"server_{kind}"] + lab[f"kernel_{kind}"] for lab in opened],
            baseline=bare,
            target="< 250 MiB (issue 14)",
            note="logged in with the form; one Skydeck notebook open, idle",
        )
    add("bare Jupyter server start to ready", "s", [s for s, _ in servers])
    add(
        "lab spawn through the hub to ready",
        "s",
        [lab["spawn"] for lab in labs],
        baseline="bare Jupyter server start to ready",
    )
    add(
        "what-if: lab spawn without rfc3987-syntax to ready",
        "s",
        [lab["spawn"] for lab in leaner],
        baseline="lab spawn through the hub to ready",
    )
    add("bare ipykernel start to first result", "s", [s for s, _ in ipykernels])
    add(
        "Skydeck kernel start to first result (lab API)",
        "s",
        [lab["first_result"] for lab in labs],
        baseline="bare ipykernel start to first result",
        note="POST /api/kernels, websocket, execute '1'",
    )
    for part, names in (("lab server", SERVER_IMPORTS), ("kernel", KERNEL_IMPORTS)):
        runs = [_import_deltas(names) for _ in range(REPEATS)]
        for name in names:
            add(f"{part} import {name}", "MiB", [run[name][0] for run in runs])
        for name in names:
            add(f"{part} import {name} time", "s", [run[name][1] for run in runs])


def run(report: Report) -> None:
    report.add("python -c pass", "s", [_import_time("pass") for _ in range(REPEATS)])
    report.add(
        "python -c 'import skydeck.lab'",
        "s",
        [_import_time("import skydeck.lab") for _ in range(REPEATS)],
        baseline="python -c pass",
        target="import adds < 0.1 s",
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        release = build_mini_release(root / "release", size=SIZE)
        hub = start_hub(root / "data", release=release)
        try:
            what_if = _hub_without_rfc3987(root / "what-if", release)
            try:
                _weight(report, hub, what_if, root / "bare")
            finally:
                what_if.stop()  # before the crossmatch: its services would compete for CPU
            url = hub.start_server("bench")
            token = hub.user_token("bench")
            ready, first = [], []
            for _ in range(REPEATS):
                seconds, session, _ = _kernel(url, token, "1")
                ready.append(seconds)
                session.shutdown()
                seconds, session, _ = _kernel(url, token, CONE)
                first.append(seconds)
                session.shutdown()
            report.add(
                "kernel start to ready",
                "s",
                ready,
                baseline="bare ipykernel start to first result",
                note="through the lab API, to the first result of '1'",
            )
            report.add(
                "kernel start to first open_catalog cone result",
                "s",
                first,
                baseline="kernel start to ready",
                note=f"Object {SIZE.objects} rows, 600 arcsec cone",
            )
            _, session, stdout = _kernel(url, token, f"REPEATS = {REPEATS}\n" + CROSSMATCH)
            session.shutdown()
            out = json.loads(stdout.strip().splitlines()[-1])
            note = f"Object {SIZE.objects} x gaia_dr3 {SIZE.matched + SIZE.extra}, 1 arcsec"
            report.add("LocalCluster start (2 workers x 1 thread)", "s", [out["local_start"]])
            report.add(
                "get_dask_client(2) gateway cluster start",
                "s",
                [out["gateway_start"]],
                baseline="LocalCluster start (2 workers x 1 thread)",
            )
            report.add("crossmatch on LocalCluster", "s", [t for t, _ in out["local"]], note=note)
            report.add(
                "crossmatch on gateway cluster",
                "s",
                [t for t, _ in out["gateway"]],
                baseline="crossmatch on LocalCluster",
                note=note,
                target="close to 1x (same workers, TLS through the gateway proxy)",
            )
            rows = {n for _, n in out["local"]} | {n for _, n in out["gateway"]}
            assert len(rows) == 1, f"the two clusters disagree on the crossmatch: {rows}"
        finally:
            hub.stop()
