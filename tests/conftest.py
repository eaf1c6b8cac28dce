"""One SparkSession for the whole test run (local[2], Delta, a lake in a temp folder).

Jobs under test call get_session(), which returns this active session; each test module keeps
its tables apart with its own catalog.schema_prefix.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from jobs.runtime.config import default_conf_dir, load_config
from jobs.runtime.session import get_session
from jobs.runtime.tables import Lake
from udfs import demo_sources

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FINELAKE_SHARED_DATA", PROJECT.parent / "shared" / "data")).resolve()
FINELAKE = str(Path(sys.executable).parent / "finelake")  # the console script of this environment


def set_flags(*overrides: str) -> list[str]:
    """`--set KEY=VALUE` flags of a stage or `finelake` command line."""
    return [arg for item in overrides for arg in ("--set", item)]


def needs_shared_data(*folders: str):
    missing = [f for f in folders if not (SHARED_DATA / f).is_dir()]
    return pytest.mark.skipif(
        bool(missing),
        reason=f"real data not found: {', '.join(str(SHARED_DATA / f) for f in missing)} "
        "(set FINELAKE_SHARED_DATA to the shared data folder)",
    )


@pytest.fixture(scope="session")
def lake_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lake")


@pytest.fixture(scope="session")
def demo_root(lake_root) -> Path:
    root = lake_root / "demo_sources"
    demo_sources.build(root)
    return root


@pytest.fixture(scope="session")
def base_overrides(lake_root, demo_root) -> list[str]:
    return [
        f"paths.lake={lake_root}",
        f"paths.demo_sources={demo_root}",
        f"paths.shared_data={SHARED_DATA}",
        "spark.master=local[2]",
        "spark.conf.spark.sql.shuffle.partitions=4",
        "spark.conf.spark.driver.memory=4g",
    ]


@pytest.fixture(scope="session")
def spark(base_overrides):
    session = get_session(load_config("local", base_overrides))
    yield session
    session.stop()


class LakeUnderTest:
    """Flags and a Lake for one schema prefix, so modules do not see each other's tables."""

    def __init__(self, spark, base_overrides: list[str], prefix: str):
        self.overrides = [*base_overrides, f"catalog.schema_prefix={prefix}"]
        self.config = load_config("local", self.overrides)
        self.config_dir = default_conf_dir()
        self.lake = Lake(spark, self.config)
        self.spark = spark

    def flags(self, *overrides: str) -> list[str]:
        return set_flags(*self.overrides, *overrides)

    def table(self, layer: str, name: str):
        return self.spark.table(f"{self.lake.schema_name(layer)}.{name}")


@pytest.fixture(scope="session")
def make_lake(spark, base_overrides):
    return lambda prefix: LakeUnderTest(spark, base_overrides, prefix)
