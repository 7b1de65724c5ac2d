"""The step error names have one home: the workers raise them, and the pipeline guide lists each."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from statemachines.step_errors import STEP_ERRORS
from workers import errors

GUIDE = Path(__file__).resolve().parents[2] / "statemachines" / "PIPELINES.md"


def test_every_error_a_worker_reports_is_in_the_table():
    reported = {
        cls.error_name
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.StepError)
    }
    assert reported and reported <= set(STEP_ERRORS)


def test_the_pipeline_guide_lists_exactly_the_table():
    section = GUIDE.read_text().split("## Error names", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(Stepline\.\w+)` \|", section, re.MULTILINE))
    assert listed == set(STEP_ERRORS)
