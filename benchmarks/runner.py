"""Run Skydeck's benchmarks and write their results as JSON plus a markdown table.

Usage::

    uv run python benchmarks/runner.py            # every benchmarks/bench_*.py
    uv run python benchmarks/runner.py hub        # only bench_hub.py

Each ``bench_<name>.py`` module defines ``run(report: Report) -> None`` and
records measurements with ``report.add``.  Machines here are noisy, so every
figure that has a target is reported as a ratio to a baseline measured in the
same run.  Nothing is asserted: results go to ``benchmarks/results/``.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent / "tests"))  # reuse the test support (real hub, labs)


@dataclass
class Measurement:
    """One measured quantity: samples in ``unit``, optionally against a baseline."""

    name: str
    unit: str
    samples: list[float]
    baseline: str | None = None
    target: str = ""
    note: str = ""

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        return self.quantile(0.9)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Report:
    """Measurements of one benchmark module."""

    benchmark: str
    measurements: list[Measurement] = field(default_factory=list)

    def add(self, name: str, unit: str, samples: list[float], **kwargs: str | None) -> Measurement:
        measurement = Measurement(name, unit, list(samples), **kwargs)  # type: ignore[arg-type]
        self.measurements.append(measurement)
        print(f"  {name}: p50 {measurement.p50:.4g} {unit} (n={len(samples)})", flush=True)
        return measurement

    def ratio(self, measurement: Measurement) -> float | None:
        if measurement.baseline is None:
            return None
        base = next(m for m in self.measurements if m.name == measurement.baseline)
        return measurement.p50 / base.p50

    def to_json(self) -> dict[str, object]:
        return {
            "benchmark": self.benchmark,
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "measurements": [
                {
                    **asdict(m),
                    "p50": m.p50,
                    "p90": m.p90,
                    "p99": m.p99,
                    "ratio_to_baseline": self.ratio(m),
                }
                for m in self.measurements
            ],
        }

    def to_markdown(self) -> str:
        lines = [
            f"### {self.benchmark}",
            "",
            "| measurement | p50 | p90 | p99 | n | ratio to baseline | target | note |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for m in self.measurements:
            ratio = self.ratio(m)
            ratio_text = f"{ratio:.2f}x {m.baseline}" if ratio is not None else ""
            lines.append(
                f"| {m.name} | {m.p50:.4g} {m.unit} | {m.p90:.4g} {m.unit} | {m.p99:.4g} {m.unit} "
                f"| {len(m.samples)} | {ratio_text} | {m.target} | {m.note} |"
            )
        return "\n".join(lines) + "\n"


def load(name: str) -> object:
    path = HERE / f"bench_{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(names: list[str]) -> None:
    available = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    RESULTS.mkdir(exist_ok=True)
    for name in names or available:
        print(f"benchmark {name}", flush=True)
        report = Report(name)
        load(name).run(report)  # type: ignore[attr-defined]
        (RESULTS / f"{name}.json").write_text(json.dumps(report.to_json(), indent=2))
        markdown = report.to_markdown()
        (RESULTS / f"{name}.md").write_text(markdown)
        print(markdown)


if __name__ == "__main__":
    main(sys.argv[1:])
