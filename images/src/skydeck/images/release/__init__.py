"""The Skydeck miniature data release: simulation, Butler repository, pipeline, publication.

Build it with ``skydeck data build [--data-dir D] [--size tiny|demo] [--seed N]``
(`skydeck.images.release.build.build_release` from Python). Find it only through
`skydeck.catalog.release.ReleaseLayout`.

Butler repository (``ReleaseLayout.butler_repo``; SQLite registry, file datastore)
-------------------------------------------------------------------------------
Read everything from the CHAINED collection ``skydeck/drp``
(``butler_repo.DEFAULT_COLLECTION``; = RUN ``skydeck/drp/run`` + ``SkydeckCam/sim`` +
``skymaps``)::

    Butler.from_config(str(layout.butler_repo), collections="skydeck/drp")

==================  ======================================  ==================  =========
dataset type        dimensions                              storage class       run
==================  ======================================  ==================  =========
visit_image         instrument, visit, detector             MaskedImageV2       SkydeckCam/sim
truth_catalog       (none)                                  DataFrame           SkydeckCam/sim
skyMap              skymap                                  StructuredDataDict  skymaps
sourceTable         instrument, visit, detector             DataFrame           skydeck/drp/run
deepCoadd           skymap, tract, patch, band              MaskedImageV2       skydeck/drp/run
deepCoadd_meas      skymap, tract, patch                    DataFrame           skydeck/drp/run
forcedSourceTable   instrument, visit, detector, skymap,    DataFrame           skydeck/drp/run
                    tract
objectTable         skymap, tract, patch                    DataFrame           skydeck/drp/run
MatchesTruth        skymap, tract, patch                    DataFrame           skydeck/drp/run
TruthSummary        skymap, tract, patch                    DataFrame           skydeck/drp/run
==================  ======================================  ==================  =========

Instrument ``SkydeckCam`` (physical filters ``<band>_sky``, bands ugrizy, detectors 0..),
skymap ``skydeck_rings`` with one tract (0) and overlapping patches. Visit images and
coadds are `lsst.images.MaskedImage` in nJy with a TAN ``sky_projection`` (``.fits_wcs``
gives an astropy WCS), variance (nJy²) and mask planes BAD, SAT, EDGE, NO_DATA,
DETECTED; visit PSFs are Moffat, described in the metadata (``PSF_FWHM`` arcsec,
``PSF_BETA``). Spatial queries work: e.g. ``butler.query_datasets("visit_image",
where="visit_detector_region.region OVERLAPS POINT(62.0, -37.0)")``.

Processing
----------
``pipelines/drp.yaml`` (`skydeck.images.release.pipeline.pipeline_path`) runs in-process
with ``SimplePipelineExecutor`` (the engine behind ``pipetask run``) during the build;
the same pipeline runs through BPS + Parsl with `skydeck.images.release.bps.submit`
(site ``LoopbackLocal``: every Parsl socket on 127.0.0.1), and from the shell with
``pipetask run -b <repo> -i SkydeckCam/sim,skymaps -o <output> -p <drp.yaml>``.

Backends: ``skydeck data build --registry postgresql://... --datastore s3://bucket/prefix``
(S3 endpoint and credentials from the usual ``S3_ENDPOINT_URL`` / ``AWS_*`` variables).

HATS catalogs (``ReleaseLayout.catalog_path(name)``)
----------------------------------------------------
Object, Source, ForcedSource, TruthSummary, MatchesTruth, Visit, CcdVisit, gaia_dr3,
and margin caches Object_10arcs, Source_10arcs, TruthSummary_10arcs; felis schemas
``schema/dp02_skydeck.yaml`` and ``schema/gaia_dr3.yaml`` (listed in the manifest).
"""
