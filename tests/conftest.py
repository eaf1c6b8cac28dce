"""One SparkSession for the whole test run (local[2], Delta, a lake in a temp folder).

Jobs under test call get_session(), which returns this active session; each test module keeps
its tables apart with its own catalog.schema_prefix.
"""

from __future__ import annotations

import io
import os
import socket
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from jobs import registry
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


def on_lake(overrides: list[str], lake: Path) -> list[str]:
    """`overrides` with paths.lake pointing at `lake` instead."""
    return [o for o in overrides if not o.startswith("paths.lake=")] + [f"paths.lake={lake}"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def attach(spark, warehouse: Path, prefix: str, schema_glob: str = "*") -> None:
    """Every Delta table under `warehouse` (<schema>.db/<table>) as `<prefix><schema>.<table>` of this session's
    catalog: another process's lake, read and extended through what its Delta logs hold."""
    for log in sorted(warehouse.glob(f"{schema_glob}.db/*/_delta_log")):
        table, schema = log.parent, log.parent.parent.name.removesuffix(".db")
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {prefix}{schema}")
        spark.sql(f"CREATE TABLE {prefix}{schema}.{table.name} USING DELTA LOCATION '{table}'")


def run_notebook(name: str, overrides: list[str]) -> dict:
    """Every code cell of notebooks/<name> run in this process (its session is the test session) with
    FINELAKE_SET naming the test lake; the namespace the cells leave behind."""
    import json

    from matplotlib import pyplot

    notebook = json.loads((PROJECT / "notebooks" / name).read_text())
    namespace: dict = {}
    previous = os.environ.get("FINELAKE_SET")
    os.environ["FINELAKE_SET"] = ";".join(overrides)
    try:
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), name, "exec"), namespace)
    finally:
        pyplot.close("all")
        if previous is None:
            del os.environ["FINELAKE_SET"]
        else:
            os.environ["FINELAKE_SET"] = previous
    return namespace


def needs_shared_data(*folders: str):
    missing = [f for f in folders if not (SHARED_DATA / f).is_dir()]
    return pytest.mark.skipif(
        bool(missing),
        reason=f"real data not found: {', '.join(str(SHARED_DATA / f) for f in missing)} "
        "(set FINELAKE_SHARED_DATA to the shared data folder)",
    )


def screenshot(picture: bytes, dark: bool) -> bytes:
    """`picture` at 70% on a page: a header bar, lines of text beside and below it (a web page or a chat app)."""
    shown = Image.open(io.BytesIO(picture)).convert("RGB")
    shown = shown.resize((round(shown.width * 0.7), round(shown.height * 0.7)))
    page = Image.new("RGB", (shown.width + 260, shown.height + 190), (30, 32, 36) if dark else (255, 255, 255))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, page.width, 48), fill=(20, 90, 170))
    for row in range(8):  # text beside the picture and under it
        draw.rectangle((shown.width + 50, 80 + 24 * row, page.width - 20 - 9 * row, 92 + 24 * row), fill=(150, 150, 150))
        draw.rectangle((30, shown.height + 100 + 10 * (row % 3), 30 + 40 * row, shown.height + 106 + 10 * (row % 3)),
                       fill=(120, 120, 120))
    page.paste(shown, (30, 70))
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    return buffer.getvalue()


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


@pytest.fixture(scope="session")
def demo_lake(make_lake):
    """The curation stages run once on the demo sources, for tests/test_pipeline.py and tests/test_publish.py."""
    lake = make_lake("e2e_")
    for stage in registry.stages(registry.CURATION):
        assert stage.main(lake.flags()) == 0
    return lake
