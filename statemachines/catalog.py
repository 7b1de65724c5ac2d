"""The shipped pipelines in statemachines/pipelines/: find them by name and load any pipeline file (JSON or YAML)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from statemachines.contract import check_pipeline
from statemachines.errors import PipelineError
from statemachines.step_defaults import fill_step_defaults

PIPELINES_DIR = Path(__file__).resolve().parent / "pipelines"
SUFFIXES = (".asl.json", ".asl.yaml", ".asl.yml")
DEFAULT_PIPELINE = "default"


def shipped_pipelines() -> dict[str, Path]:
    """Every pipeline shipped with Stepline by name (`release` for release.asl.json), sorted."""
    found = {}
    for path in sorted(PIPELINES_DIR.iterdir()):
        for suffix in SUFFIXES:
            if path.name.endswith(suffix):
                found[path.name.removesuffix(suffix)] = path
    return found


def parse_pipeline(text: str, source: str) -> dict[str, Any]:
    """A definition from JSON or YAML text (YAML is a superset, but JSON errors read better)."""
    try:
        document = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise PipelineError(source, [f"not valid JSON or YAML: {exc}"]) from None
    if not isinstance(document, dict) or not isinstance(document.get("States"), dict):
        raise PipelineError(source, ["not a state machine definition (no States object)"])
    return document


def load_pipeline(name_or_path: str) -> tuple[str, dict[str, Any]]:
    """A shipped pipeline by name, or a pipeline file by path: (name, definition as deployed), checked against the contract.

    The definition has the build-step defaults filled in (statemachines/step_defaults.py).
    """
    shipped = shipped_pipelines()
    path = shipped.get(name_or_path) or Path(name_or_path)
    if not path.is_file():
        known = ", ".join(shipped)
        raise PipelineError(name_or_path, [f"no such pipeline (shipped: {known}) or file"])
    name = next((n for n, p in shipped.items() if p == path), _name_of(path))
    definition = fill_step_defaults(parse_pipeline(path.read_text(), str(path)))
    problems = check_pipeline(definition)
    if problems:
        raise PipelineError(name, problems)
    return name, definition


def _name_of(path: Path) -> str:
    for suffix in (*SUFFIXES, ".json", ".yaml", ".yml"):
        if path.name.endswith(suffix):
            return path.name.removesuffix(suffix)
    return path.stem
