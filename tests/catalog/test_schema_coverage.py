"""The DP0.2 coverage table in catalog/README.md is regenerated from the two schemas.

Set ``SKYDECK_UPDATE_COVERAGE=1`` to rewrite the committed table after changing what
the release publishes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from skydeck.catalog.schema import RELEASE_SCHEMA_NAME, coverage_table

README = Path(__file__).parents[2] / "catalog" / "README.md"
_BLOCK = re.compile(r"(<!-- dp02-coverage:start -->\n)(.*?)(<!-- dp02-coverage:end -->)", re.S)


def test_readme_coverage_table_matches_the_schemas(tiny_release):
    published = yaml.safe_load(
        (tiny_release.schema_dir / f"{RELEASE_SCHEMA_NAME}.yaml").read_text()
    )
    expected = coverage_table(published)
    text = README.read_text()
    match = _BLOCK.search(text)
    assert match, "catalog/README.md lacks the <!-- dp02-coverage:start/end --> block"
    if os.environ.get("SKYDECK_UPDATE_COVERAGE") == "1":
        README.write_text(text[: match.start(2)] + expected + text[match.end(2) :])
        return
    assert match.group(2) == expected, (
        "catalog/README.md's DP0.2 coverage table is out of date; rerun this test with "
        f"SKYDECK_UPDATE_COVERAGE=1 to rewrite it. Expected:\n{expected}"
    )


def test_coverage_counts_only_dp02_columns():
    published = {
        "tables": [
            {
                "name": "Visit",
                "columns": [{"name": "visit"}, {"name": "ra"}, {"name": "_healpix_29"}],
            }
        ]
    }
    table = coverage_table(published)
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert "| 2 |" in rows["Visit"]
    assert rows["Object"].split("|")[3].strip() == "0"
    assert len(rows) == 13  # DP0.2's 12 tables and the total
