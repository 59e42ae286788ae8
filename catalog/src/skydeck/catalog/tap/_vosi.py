"""VOSI and UWS documents: capabilities, availability, tables, examples, jobs."""

from __future__ import annotations

from datetime import datetime
from xml.sax.saxutils import escape

from pydantic_xml import element
from vo_models.uws.models import (
    ErrorSummary,
    Jobs,
    JobSummary,
    Parameter,
    Parameters,
    ResultReference,
    Results,
    ShortJobDescription,
)
from vo_models.uws.types import ErrorType, ExecutionPhase
from vo_models.vosi.availability.models import Availability

from ._formats import FORMATS
from ._schema import ColumnInfo, SchemaInfo, TableInfo, adql_name
from ._store import JobRecord
from .config import TapSettings

GEOMETRY_FEATURES = ["POINT", "CIRCLE", "BOX", "POLYGON", "CONTAINS", "INTERSECTS", "DISTANCE",
                     "COORD1", "COORD2", "COORDSYS"]  # fmt: skip
UDF_FEATURES = [
    ("scisql_nanojanskyToAbMag(flux DOUBLE) -> DOUBLE",
     "AB magnitude of a flux in nJy (NULL for flux <= 0), as in Rubin's Qserv."),
    ("scisql_nanojanskyToAbMagSigma(flux DOUBLE, fluxErr DOUBLE) -> DOUBLE",
     "Uncertainty of the AB magnitude of a flux in nJy with the given error."),
    ("scisql_s2PtInCircle(ra DOUBLE, dec DOUBLE, centerRa DOUBLE, centerDec DOUBLE, "
     "radius DOUBLE) -> INTEGER",
     "1 if (ra, dec) is within radius degrees of the centre, else 0."),
]  # fmt: skip
ADQL_FEATURES = {
    "ivo://ivoa.net/std/TAPRegExt#features-adql-string": ["LOWER", "UPPER", "ILIKE"],
    "ivo://ivoa.net/std/TAPRegExt#features-adql-sets": ["UNION", "EXCEPT", "INTERSECT"],
    "ivo://ivoa.net/std/TAPRegExt#features-adql-common-table": ["WITH"],
    "ivo://ivoa.net/std/TAPRegExt#features-adql-offset": ["OFFSET"],
    "ivo://ivoa.net/std/TAPRegExt#features-adql-type": ["CAST"],
}

EXAMPLES = [
    ("cone", "Cone search on Object",
     "SELECT TOP 100 objectId, coord_ra, coord_dec, scisql_nanojanskyToAbMag(r_psfFlux) AS r_mag\n"
     "FROM dp02_dc2_catalogs.Object\n"
     "WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62.0, -37.0, 0.1)) = 1\n"
     "  AND detect_isPrimary = 1"),
    ("lightcurve", "Forced photometry of one object",
     "SELECT TOP 100 f.ccdVisitId, f.band, f.psfFlux, f.psfFluxErr\n"
     "FROM dp02_dc2_catalogs.ForcedSource AS f\n"
     "JOIN dp02_dc2_catalogs.Object AS o ON o.objectId = f.objectId\n"
     "WHERE o.objectId = 3000000"),
    ("tables", "The published tables",
     "SELECT schema_name, table_name, description FROM TAP_SCHEMA.tables"),
]  # fmt: skip


class TapParameters(Parameters):
    """The TAP parameters a job document lists."""

    request: Parameter | None = element(tag="parameter", default=None)
    lang: Parameter | None = element(tag="parameter", default=None)
    query: Parameter | None = element(tag="parameter", default=None)
    maxrec: Parameter | None = element(tag="parameter", default=None)
    responseformat: Parameter | None = element(tag="parameter", default=None)
    format: Parameter | None = element(tag="parameter", default=None)
    upload: Parameter | None = element(tag="parameter", default=None)
    runid: Parameter | None = element(tag="parameter", default=None)


def _interface(url: str, std: bool = False) -> str:
    role = ' role="std" version="1.1"' if std else ""
    use = "base" if std else "full"
    return (
        f'<interface xsi:type="vs:ParamHTTP"{role}>'
        f'<accessURL use="{use}">{escape(url)}</accessURL></interface>'
    )


def capabilities(base: str, settings: TapSettings, table_names: list[str]) -> str:
    """The VOSI capabilities document: exactly the features this service implements."""
    del table_names
    features = "".join(f"<feature><form>{f}</form></feature>" for f in GEOMETRY_FEATURES)
    udfs = "".join(
        f"<feature><form>{escape(form)}</form><description>{escape(desc)}</description></feature>"
        for form, desc in UDF_FEATURES
    )
    other = "".join(
        f'<languageFeatures type="{kind}">'
        + "".join(f"<feature><form>{f}</form></feature>" for f in forms)
        + "</languageFeatures>"
        for kind, forms in ADQL_FEATURES.items()
    )
    formats = "".join(
        f"<outputFormat><mime>{escape(f.mime)}</mime>"
        + "".join(f"<alias>{escape(a)}</alias>" for a in f.aliases[:2])
        + "</outputFormat>"
        for f in FORMATS
    )
    retention = int(settings.retention_days * 86400)
    vosi = "\n".join(
        f'<capability standardID="ivo://ivoa.net/std/{std}">{_interface(base + path)}</capability>'
        for std, path in (
            ("VOSI#capabilities", "/capabilities"),
            ("VOSI#availability", "/availability"),
            ("VOSI#tables-1.1", "/tables"),
            ("DALI#examples", "/examples"),
        )
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" \
xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" \
xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">
<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">
{_interface(base, std=True)}
<language><name>ADQL</name>
<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>
<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>
<description>ADQL 2.1 translated to DuckDB over the HATS catalogs</description>
<languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-adqlgeo">{features}</languageFeatures>
<languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-udf">{udfs}</languageFeatures>
{other}
</language>
{formats}
<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>
<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-http"/>
<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-https"/>
<retentionPeriod><default>{retention}</default><hard>{retention}</hard></retentionPeriod>
<executionDuration><default>{settings.async_default_duration}</default>\
<hard>{settings.async_max_duration}</hard></executionDuration>
<outputLimit><default unit="row">{settings.default_maxrec}</default>\
<hard unit="row">{settings.max_maxrec}</hard></outputLimit>
<uploadLimit><hard unit="byte">{settings.max_upload_bytes}</hard></uploadLimit>
</capability>
{vosi}
</vosi:capabilities>
"""


def availability(available: bool, note: str) -> str:
    document = Availability(available=available, note=[note]).to_xml(
        skip_empty=True, encoding="unicode"
    )
    return str(document)


def _column_xml(col: ColumnInfo, primary: bool) -> str:
    parts = [f"<name>{escape(adql_name(col.name))}</name>"]
    if col.description:
        parts.append(f"<description>{escape(col.description)}</description>")
    if col.unit:
        parts.append(f"<unit>{escape(col.unit)}</unit>")
    if col.ucd:
        parts.append(f"<ucd>{escape(col.ucd)}</ucd>")
    attrs = f' arraysize="{col.arraysize}"' if col.arraysize else ""
    if col.xtype:
        attrs += f' extendedType="{escape(col.xtype)}"'
    parts.append(f'<dataType xsi:type="vs:VOTableType"{attrs}>{col.datatype}</dataType>')
    if col.indexed:
        parts.append("<flag>indexed</flag>")
    if primary or col.principal:
        parts.append("<flag>principal</flag>")
    if col.std:
        parts.append("<flag>std</flag>")
    return "<column>" + "".join(parts) + "</column>"


def table_xml(table: TableInfo, detail: bool = True) -> str:
    parts = [f"<name>{escape(table.name)}</name>"]
    if table.description:
        parts.append(f"<description>{escape(table.description)}</description>")
    if detail:
        parts.extend(_column_xml(c, False) for c in table.columns)
        for key in table.keys:
            cols = "".join(
                f"<fkColumn><fromColumn>{escape(f)}</fromColumn>"
                f"<targetColumn>{escape(t)}</targetColumn></fkColumn>"
                for f, t in zip(key.from_columns, key.target_columns, strict=False)
            )
            parts.append(
                f"<foreignKey><targetTable>{escape(key.target_table)}</targetTable>{cols}"
                + (
                    f"<description>{escape(key.description)}</description>"
                    if key.description
                    else ""
                )
                + "</foreignKey>"
            )
    return f'<table type="{table.table_type}">' + "".join(parts) + "</table>"


_TABLES_NS = (
    'xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" '
    'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)


def tableset(schemas: list[SchemaInfo], detail: bool = True) -> str:
    body = "".join(
        f"<schema><name>{escape(s.name)}</name>"
        + (f"<description>{escape(s.description)}</description>" if s.description else "")
        + "".join(table_xml(t, detail) for t in s.tables)
        + "</schema>"
        for s in schemas
    )
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return f"{head}<vosi:tableset {_TABLES_NS}>{body}</vosi:tableset>\n"


def single_table(table: TableInfo) -> str:
    inner = table_xml(table)
    inner = inner.replace('<table type="', f'<vosi:table {_TABLES_NS} type="', 1)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + inner[: -len("</table>")] + "</vosi:table>\n"
    )


def examples(base: str) -> str:
    items = "\n".join(
        f'<div typeof="example" id="{key}" resource="#{key}">\n'
        f'<h2 property="name">{escape(title)}</h2>\n'
        f'<pre class="dachs-ex-tapquery literal-block" property="query">{escape(query)}</pre>\n'
        "</div>"
        for key, title, query in EXAMPLES
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML+RDFa 1.1//EN" "http://www.w3.org/MarkUp/DTD/xhtml-rdfa-2.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" version="XHTML+RDFa 1.1">
<head><title>Skydeck TAP examples</title></head>
<body vocab="http://www.ivoa.net/rdf/examples#">
<h1>Example queries for {escape(base)}</h1>
{items}
</body>
</html>
"""


def _ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if value else None


def job_document(job: JobRecord, base: str) -> str:
    results = []
    if job.phase == "COMPLETED" and job.result_path:
        results.append(
            ResultReference(
                id="result",
                href=f"{base}/async/{job.job_id}/results/result",
                size=job.result_size,
                mime_type=job.result_mime,
            )
        )
    params = {
        k.lower(): Parameter(id=k.lower(), value=v)
        for k, v in sorted(job.parameters.items())
        if k.lower() in TapParameters.model_fields
    }
    summary = JobSummary[TapParameters](
        job_id=job.job_id,
        run_id=job.run_id,
        owner_id=job.owner,
        phase=ExecutionPhase(job.phase),
        quote=None,
        creation_time=job.creation_time,
        start_time=job.start_time,
        end_time=job.end_time,
        execution_duration=job.execution_duration,
        destruction=job.destruction,
        parameters=TapParameters(**params) if params else None,
        results=Results(results=results),
        error_summary=ErrorSummary(message=job.error or "", type=ErrorType.FATAL, has_detail=True)
        if job.phase == "ERROR"
        else None,
    )
    return str(summary.to_xml(skip_empty=False, encoding="unicode"))


def jobs_document(jobs: list[JobRecord], base: str) -> str:
    refs = [
        ShortJobDescription(
            job_id=j.job_id,
            phase=ExecutionPhase(j.phase),
            run_id=j.run_id,
            owner_id=j.owner,
            creation_time=j.creation_time,
            href=f"{base}/async/{j.job_id}",
        )
        for j in jobs
    ]
    return str(Jobs(jobref=refs).to_xml(skip_empty=True, encoding="unicode"))
