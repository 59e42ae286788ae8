"""Publish a built release to object storage: ``skydeck data publish``.

A release built on one machine (``skydeck data build``) is copied to an
object-store prefix such as ``s3://bucket/release``, with the same layout
(`skydeck.catalog.release.ReleaseLayout`), so the hub, its services and every lab
read it from there (``skydeck up --release s3://bucket/release``):

- the HATS catalogs, schemas and licences are copied file by file;
- the Butler repository is created at ``<release>/butler`` (its ``butler.yaml``
  and datastore in the bucket) with its registry in PostgreSQL, and every dataset
  of the built repository is transferred into it, with all dimension records
  and the chained collections;
- the manifest is written last, so a reader sees a complete release or none.

S3 endpoint and credentials come from the standard variables (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ...), the registry password from ``PGPASSWORD`` or
``~/.lsst/db-auth.yaml``: nothing secret is written into the bucket.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from skydeck.catalog.release import MANIFEST_NAME, ReleaseLayout


class PublishError(RuntimeError):
    """The release cannot be published there; the message says what to do."""


def registry_namespace(target: str) -> str:
    """The PostgreSQL schema holding the registry of the release published at ``target``."""
    return "skydeck_pub_" + hashlib.sha1(target.rstrip("/").encode()).hexdigest()[:10]


def _check_registry(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise PublishError(f"--registry is not a database URL ({error})") from error
    if parsed.get_backend_name() != "postgresql":
        raise PublishError(
            f"--registry names {parsed.get_backend_name()!r}: a release on object storage "
            "needs its Butler registry in PostgreSQL (postgresql://user@host:5432/dbname)"
        )
    if parsed.password:
        raise PublishError(
            "--registry contains a password, which would be written into the bucket's "
            "butler.yaml: leave it out and give it through PGPASSWORD or ~/.lsst/db-auth.yaml"
        )
    return url


def _log(report: Callable[[str], None] | None, text: str) -> None:
    if report is not None:
        report(text)


def publish_release(
    source: ReleaseLayout,
    target: str,
    registry: str,
    report: Callable[[str], None] | None = None,
) -> ReleaseLayout:
    """Copy the release ``source`` to ``target`` (an object-store prefix such as
    ``s3://bucket/dr1``, or a directory); returns the published layout.

    An interrupted publish is simply run again: until the manifest is written last,
    nothing at ``target`` counts as a release, and leftovers are replaced.
    """
    registry = _check_registry(registry)
    if not source.exists():
        raise PublishError(
            f"no release to publish at {source.root}: build one first with `skydeck data build`"
        )
    dest = ReleaseLayout.at(target)
    try:
        if dest.exists():
            raise PublishError(
                f"a release is already published at {dest.root}; choose another prefix "
                "(a published release never changes in place)"
            )
        if dest.root.protocol in ("", "file", "local"):
            dest.root.fs.mkdirs(dest.root.path, exist_ok=True)
        else:  # an object store: the bucket must exist (it is never created here)
            bucket = dest.root.path.split("/", 1)[0]
            if not dest.root.fs.exists(bucket):
                raise PublishError(
                    f"the bucket {bucket!r} of {dest.root} does not exist (or these "
                    "credentials cannot see it): create it first"
                )
    except PublishError:
        raise
    except Exception as error:  # botocore/s3fs errors: endpoint, credentials, bucket
        raise PublishError(
            f"cannot write to {dest.root}: {error}. Check the bucket and AWS_ENDPOINT_URL, "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from error
    manifest = source.read_manifest()
    _log(report, f"Butler repository -> {dest.butler_repo} (registry in PostgreSQL)")
    _publish_butler(source, dest, registry)
    for child in sorted(source.root.iterdir(), key=lambda p: p.name):
        if child.name in (source.butler_repo.name, MANIFEST_NAME):
            continue
        _log(report, f"{child.name}/ -> {dest.root / child.name}")
        if child.is_dir():
            dest.root.fs.put(str(child) + "/", (dest.root / child.name).path + "/", recursive=True)
        else:
            dest.root.fs.put_file(str(child), (dest.root / child.name).path)
    manifest["registry"] = registry
    manifest["datastore"] = str(dest.butler_repo)
    manifest["published_from"] = str(source.root)
    dest.manifest_path.write_text(json.dumps(manifest, indent=2))
    _log(report, f"manifest -> {dest.manifest_path}")
    return dest


def _publish_butler(source: ReleaseLayout, dest: ReleaseLayout, registry: str) -> None:
    from lsst.daf.butler import Butler, CollectionType, Config

    repo = str(dest.butler_repo)
    namespace = registry_namespace(str(dest.root))
    _prepare_database(registry, namespace)
    # What an interrupted publish left (there is no manifest yet, so nobody reads it).
    if dest.butler_repo.exists():
        dest.butler_repo.fs.rm(dest.butler_repo.path, recursive=True)
    src = Butler.from_config(str(source.butler_repo), writeable=False)
    try:
        built = Config(str(source.butler_repo / "butler.yaml"))
        config = Config()
        config["datastore"] = built["datastore"]
        config["datastore", "root"] = "<butlerRoot>"
        config["registry"] = {"db": registry, "namespace": namespace}
        if "managers" in built["registry"]:
            config["registry", "managers"] = built["registry", "managers"]
        Butler.makeRepo(repo, config=config)
        out = Butler.from_config(repo, writeable=True)
        try:
            universe = src.dimensions
            with out.registry.transaction():
                for element in universe.sorted(universe.getStaticElements()):
                    if not element.has_own_table:
                        continue
                    records = list(
                        src.query_dimension_records(element.name, limit=None, explain=False)
                    )
                    if records:
                        out.registry.insertDimensionData(element, *records, skip_existing=True)
            runs = [
                info.name
                for info in src.collections.query_info("*", collection_types={CollectionType.RUN})
            ]
            refs = _all_refs(src, runs)
            out.transfer_from(src, refs, transfer="copy", register_dataset_types=True)
            for run in runs:  # empty RUN collections too
                out.collections.register(run, CollectionType.RUN)
            chains = src.collections.query_info(
                "*", collection_types={CollectionType.CHAINED}, include_chains=True
            )
            for info in chains:
                out.collections.register(info.name, CollectionType.CHAINED)
            for info in chains:
                out.collections.redefine_chain(info.name, list(info.children))
            transferred = len(_all_refs(out, runs))
            if transferred < len(refs):
                raise PublishError(
                    f"only {transferred} of {len(refs)} datasets reached {repo}; publish again"
                )
        finally:
            out.close()
    finally:
        src.close()


def _all_refs(butler: Any, runs: list[str]) -> list[Any]:
    """Every dataset of ``butler`` in the RUN collections ``runs``."""
    refs: list[Any] = []
    for dataset_type in butler.registry.queryDatasetTypes():
        for run in runs:
            refs += butler.query_datasets(
                dataset_type, collections=run, find_first=False, explain=False, limit=None
            )
    return refs


def _prepare_database(url: str, namespace: str) -> None:
    """Enable btree_gist (the registry needs it) and drop what an interrupted publish left."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
            conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE'))
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise PublishError(
            f"cannot prepare the registry database {make_url(url).render_as_string()}: "
            f"{reason}. Check --registry and that the server runs; the Butler registry also "
            "needs the btree_gist extension (CREATE EXTENSION btree_gist; as an administrator)"
        ) from error
    finally:
        engine.dispose()
