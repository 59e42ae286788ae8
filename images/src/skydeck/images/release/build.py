"""The release build: stages, staging directory, resume and atomic publication.

The build writes into ``<data>/release.staging/`` and records each finished stage
in ``build-state.json`` there. A rerun with the same size, seed and backends
resumes after the last finished stage; anything else starts clean (and says so).
Publication is one ``rename`` of the staging directory to ``<data>/release`` after
the manifest has been written, so ``skydeck up`` sees no release or a complete one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from skydeck.catalog.release import MANIFEST_NAME, RELEASE_DIRNAME, ReleaseLayout
from skydeck.images.release._config import SIZES, ReleaseSize

STATE_NAME = "build-state.json"
STAGING_SUFFIX = ".staging"

#: Build stages in order.
STAGES: tuple[str, ...] = ("truth", "images", "pipeline", "tables", "hats", "schema", "manifest")


class BuildError(RuntimeError):
    """The build cannot proceed; the message says what to do."""


class Reporter(Protocol):
    """Receives progress: a stage starts with a number of steps, advances, ends."""

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, steps: int = 1) -> None: ...

    def done(self, stage: str, seconds: float) -> None: ...

    def message(self, text: str) -> None: ...


class QuietReporter:
    """A reporter that only records stage times (for benchmarks and tests)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.messages: list[str] = []

    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, stage: str, steps: int = 1) -> None:
        pass

    def done(self, stage: str, seconds: float) -> None:
        self.times[stage] = seconds

    def message(self, text: str) -> None:
        self.messages.append(text)


@dataclass
class BuildOptions:
    """What to build, and where."""

    data_dir: Path
    size: str = "demo"
    seed: int = 42
    registry: str | None = None
    datastore: str | None = None
    #: Processes for rendering and the pipeline; 0 means every CPU. Not part of the
    #: fingerprint: the result does not depend on it.
    jobs: int = 0

    @property
    def worker_count(self) -> int:
        from skydeck.images.release.pipeline import default_jobs

        return self.jobs or default_jobs()

    @property
    def release_size(self) -> ReleaseSize:
        try:
            return SIZES[self.size]
        except KeyError:
            raise BuildError(
                f"unknown release size {self.size!r}; choose one of {', '.join(SIZES)}"
            ) from None

    @property
    def release_dir(self) -> Path:
        return self.data_dir / RELEASE_DIRNAME

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / (RELEASE_DIRNAME + STAGING_SUFFIX)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "seed": self.seed,
            "registry": self.registry or "",
            "datastore": self.datastore or "",
            "version": 3,
        }


@dataclass
class BuildState:
    """Stages finished in the staging directory, for resuming."""

    fingerprint: dict[str, Any]
    finished: list[str] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> BuildState | None:
        try:
            data = json.loads(path.read_text())
            return cls(data["fingerprint"], list(data["finished"]), dict(data.get("times", {})))
        except (OSError, ValueError, KeyError):
            return None

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"fingerprint": self.fingerprint, "finished": self.finished, "times": self.times},
                indent=2,
            )
        )
        os.replace(tmp, path)


@dataclass
class BuildContext:
    options: BuildOptions
    layout: ReleaseLayout
    reporter: Reporter
    work: Path

    @property
    def size(self) -> ReleaseSize:
        return self.options.release_size


def _truth(ctx: BuildContext) -> None:
    from skydeck.images.release.truth import make_truth

    ctx.reporter.start("truth", 1)
    truth = make_truth(ctx.size, ctx.options.seed)
    truth.to_parquet(ctx.work / "truth.parquet", index=False)
    ctx.reporter.advance("truth")


def _images(ctx: BuildContext) -> None:
    from skydeck.images.release import butler_repo as br
    from skydeck.images.release._geometry import SkyMapSpec, detector_ids, plan_visits

    repo = Path(str(ctx.layout.butler_repo))
    if repo.exists():
        shutil.rmtree(repo)
    if ctx.options.registry or ctx.options.datastore:
        _drop_remote_leftovers(ctx)
    size, seed = ctx.size, ctx.options.seed
    truth = pd.read_parquet(ctx.work / "truth.parquet")
    plans = plan_visits(size, seed)
    dets = detector_ids(size)
    ctx.reporter.start("images", len(plans) * len(dets) + 1)
    butler = br.create_repo(
        str(repo), registry_url=ctx.options.registry, datastore_uri=ctx.options.datastore
    )
    skymap = SkyMapSpec.for_size(size)
    br.register_dimensions(butler, size, plans, skymap)
    br.register_input_dataset_types(butler)
    butler.put(truth, br.TRUTH, run=br.INPUT_RUN)
    butler.put(skymap.to_dict(), br.SKYMAP_DATASET, skymap=skymap.name, run=br.SKYMAP_RUN)
    butler.close()
    ctx.reporter.advance("images")
    # Each worker renders whole visit images and stores them with its own Butler.
    from skydeck.images.release.pipeline import worker_context

    with ProcessPoolExecutor(
        ctx.options.worker_count,
        mp_context=worker_context(),
        initializer=_start_render_worker,
        initargs=(repo, size, truth, seed),
    ) as pool:
        for _ in pool.map(_render_and_store, [(plan, det) for plan in plans for det in dets]):
            ctx.reporter.advance("images")


#: What a render worker is given (size, truth, seed) and opens (its Butler).
_render_state: Any = None
_worker_butler: Any = None


def _start_render_worker(repo: Path, size: ReleaseSize, truth: pd.DataFrame, seed: int) -> None:
    from lsst.daf.butler import Butler

    global _render_state, _worker_butler
    _render_state = (size, truth, seed)
    _worker_butler = Butler.from_config(str(repo), writeable=True)


def _render_and_store(job: tuple[Any, int]) -> None:
    from skydeck.images.release import butler_repo as br
    from skydeck.images.release.simulate import render_visit

    plan, det = job
    size, truth, seed = _render_state
    image = render_visit(size, plan, det, truth, seed)
    _worker_butler.put(
        image,
        br.VISIT_IMAGE,
        instrument=br.INSTRUMENT,
        visit=plan.visit,
        detector=det,
        run=br.INPUT_RUN,
    )


def _drop_remote_leftovers(ctx: BuildContext) -> None:
    """Drop the registry schema and datastore files an interrupted attempt left behind."""
    from skydeck.images.release.butler_repo import drop_remote_leftovers

    drop_remote_leftovers(
        str(ctx.layout.butler_repo),
        registry_url=ctx.options.registry,
        datastore_uri=ctx.options.datastore,
    )


def _pipeline(ctx: BuildContext) -> None:
    from skydeck.images.release.pipeline import run_pipeline

    run_pipeline(ctx.layout, ctx.reporter, ctx.options.worker_count)


def _tables(ctx: BuildContext) -> None:
    from skydeck.images.release.tables import write_tables

    ctx.reporter.start("tables", 1)
    write_tables(ctx.layout, ctx.work / "tables", ctx.size, ctx.options.seed)
    ctx.reporter.advance("tables")


def _hats(ctx: BuildContext) -> None:
    from skydeck.catalog.hats_build import build_hats_catalogs

    build_hats_catalogs(ctx.work / "tables", ctx.layout, ctx.work / "hats-tmp", ctx.reporter)


def _schema(ctx: BuildContext) -> None:
    from skydeck.catalog.schema import write_published_schemas

    ctx.reporter.start("schema", 1)
    write_published_schemas(ctx.work / "tables", ctx.layout)
    ctx.reporter.advance("schema")


def _manifest(ctx: BuildContext) -> None:
    from skydeck.images.release.tables import write_manifest

    ctx.reporter.start("manifest", 1)
    write_manifest(ctx.layout, ctx.work / "tables", ctx.options.fingerprint())
    ctx.reporter.advance("manifest")


_STAGE_FUNCS: dict[str, Callable[[BuildContext], None]] = {
    "truth": _truth,
    "images": _images,
    "pipeline": _pipeline,
    "tables": _tables,
    "hats": _hats,
    "schema": _schema,
    "manifest": _manifest,
}


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildError(
                f"another `skydeck data build` is running in {path.parent}; wait for it to finish"
            ) from None
        yield


def build_release(options: BuildOptions, reporter: Reporter | None = None) -> ReleaseLayout:
    """Build (or resume building) the release and publish it atomically."""
    reporter = reporter or QuietReporter()
    _ = options.release_size  # validate early
    final = ReleaseLayout.in_data_dir(options.data_dir)
    if final.exists():
        reporter.message(f"A release is already published at {final.root}; nothing to do.")
        return final
    if options.release_dir.exists():
        raise BuildError(
            f"{options.release_dir} exists but has no {MANIFEST_NAME}: it is not a Skydeck "
            "release (maybe a partial copy). Move it away and run the build again."
        )
    options.data_dir.mkdir(parents=True, exist_ok=True)
    with _lock(options.data_dir / ".release-build.lock"):
        staging = options.staging_dir
        state_path = staging / STATE_NAME
        state = BuildState.load(state_path) if staging.exists() else None
        if state is not None and state.fingerprint == options.fingerprint() and state.finished:
            reporter.message(
                f"Resuming the interrupted build in {staging} after stage "
                f"'{state.finished[-1]}' ({len(state.finished)}/{len(STAGES)} stages done)."
            )
        else:
            if staging.exists():
                reporter.message(
                    f"Starting clean: removing the unusable partial build in {staging}."
                )
                shutil.rmtree(staging)
            else:
                reporter.message(f"Starting a clean {options.size} build (seed {options.seed}).")
            staging.mkdir(parents=True)
            state = BuildState(options.fingerprint())
            state.save(state_path)
        work = staging / ".work"
        work.mkdir(exist_ok=True)
        layout = ReleaseLayout.at(staging)
        ctx = BuildContext(options, layout, reporter, work)
        for stage in STAGES:
            if stage in state.finished:
                continue
            t0 = time.perf_counter()
            _STAGE_FUNCS[stage](ctx)
            elapsed = time.perf_counter() - t0
            reporter.done(stage, elapsed)
            state.finished.append(stage)
            state.times[stage] = elapsed
            state.save(state_path)
        shutil.rmtree(work, ignore_errors=True)
        state_path.unlink()
        os.rename(staging, options.release_dir)
    return final
