"""A separate process for the kill test (tests/test_teacher_resume.py): its own lake and Derby metastore.

    python -m tests.resume_child STAGE KEY=VALUE ...   (config overrides; the lake is paths.lake)

Writes the teacher test's silver input when the lake has none, then runs the teacher stage STAGE.
"""

import sys

from jobs import registry
from jobs.runtime.config import load_config
from jobs.runtime.session import get_session
from jobs.runtime.tables import Lake
from schemas import silver_samples
from tests.conftest import set_flags


class ChildLake:
    def __init__(self, overrides: list[str]):
        self.config = load_config("local", overrides)
        self.spark = get_session(self.config)
        self.lake = Lake(self.spark, self.config)


def main(stage: str, overrides: list[str]) -> int:
    from tests.test_teacher import write_silver

    child = ChildLake(overrides)
    if child.lake.latest_version(silver_samples.CONTRACT) == 0:
        write_silver(child)
    return registry.BY_NAME[stage].main(set_flags(*overrides))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
