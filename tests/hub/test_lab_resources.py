"""The resource variables every Skydeck spawner hands a lab (`LabResources`).

The real thing is tested in a spawned lab (tests/lab/test_lab_environment.py) and
in KubeSpawner's pod manifest (tests/hub/test_kubernetes.py); this pins the rule.
"""

from __future__ import annotations

import pytest

from skydeck.hub.spawner import resource_environment, whole_cores


@pytest.mark.parametrize(
    ("cores", "whole"), [(2.0, 2), (4, 4), (0.5, 1), (1.5, 2), (0.001, 1), (2.0000000001, 2)]
)
def test_cores_are_rounded_up_to_whole_cores(cores: float, whole: int) -> None:
    assert whole_cores(cores) == whole


def test_jupyterhub_float_strings_become_integer_strings() -> None:
    env = {
        "CPU_LIMIT": "2.0",
        "CPU_GUARANTEE": "0.5",
        "MEM_LIMIT": "4294967296",
        "MEM_GUARANTEE": "",
        "OTHER": "2.0",
    }
    assert resource_environment(env) == {
        "CPU_LIMIT": "2",
        "CPU_GUARANTEE": "1",
        "MEM_LIMIT": "4294967296",
    }
