"""JSONPath as AWS Step Functions evaluates it: "$" input, "$$" context object, "$name" variables.

Values are treated as immutable: nothing here mutates its arguments, and read_path returns
references into the data it was given (callers that mutate must copy first).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import jsonpath_ng
import jsonpath_ng.ext
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError

from . import offload
from .errors import StatesError


class PathNotFound(StatesError):
    """Raised when a definite path selects nothing in the data it is applied to.

    It is a States.Runtime error with AWS's InputPath/OutputPath cause; callers that report the
    failure under another field (Parameters, ResultSelector, Choice) re-raise with their own text.
    """

    def __init__(self, path: str) -> None:
        super().__init__("States.Runtime", f"Invalid path '{path}' : No results for path: {_jayway(path)}")
        self.path = path


class ResultPathMatchFailure(StatesError):
    """Raised when ResultPath cannot be applied because the input is not an object where it must write."""

    def __init__(self, result_path: str, data: Any) -> None:
        # AWS's exact wording for this cause is not in the recorded cases; this follows its style.
        super().__init__(
            "States.ResultPathMatchFailure",
            f'Unable to apply ResultPath "{result_path}" to input "{to_json_text(data)}"',
        )
        self.result_path = result_path


_MISSING = object()


def to_json_text(value: Any) -> str:
    """Compact JSON text, as AWS quotes values inside error causes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# A simple definite path: "$" then any number of .name / ['name'] / [index] steps.
_STEP = re.compile(r"""\.([^.\[\]\s'"()*?,=<>!]+)|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*(-?\d+)\s*\]""")
_VARIABLE = re.compile(r"\$([^\W\d]\w*)")  # a workflow variable: a letter or underscore, then word characters


@dataclass(frozen=True)
class CompiledPath:
    """A parsed path: where it reads from, and either fast steps or a jsonpath-ng expression."""

    text: str
    root: str  # "input", "context" or "variable"
    variable: str | None  # the variable name when root == "variable"
    steps: tuple[str | int, ...] | None  # definite simple path, None when jsonpath-ng is needed
    expr: Any  # jsonpath_ng expression for complex paths
    definite: bool


@functools.lru_cache(maxsize=4096)
def compile_path(path: str) -> CompiledPath:
    """Parse a path once; raises ValueError when it is not a valid AWS JSONPath."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise ValueError(f"not a JSONPath: {path!r}")
    root, variable, rest = "input", None, path[1:]
    if path.startswith("$$"):
        root, rest = "context", path[2:]
    elif len(path) > 1 and path[1] not in ".[":
        match = _VARIABLE.match(path)
        if not match:
            raise ValueError(f"not a JSONPath: {path!r}")
        root, variable, rest = "variable", match.group(1), path[match.end() :]
    steps = _simple_steps(rest)
    if steps is not None:
        return CompiledPath(path, root, variable, steps, None, True)
    try:
        expr = jsonpath_ng.ext.parse("$" + rest)
    except (
        JsonPathLexerError,
        JsonPathParserError,
        Exception,
    ) as exc:  # the parser raises bare Exception too
        raise ValueError(f"invalid JSONPath {path!r}: {exc}") from exc
    return CompiledPath(path, root, variable, None, expr, _is_definite(expr))


def _simple_steps(rest: str) -> tuple[str | int, ...] | None:
    steps: list[str | int] = []
    pos = 0
    while pos < len(rest):
        match = _STEP.match(rest, pos)
        if not match:
            return None
        name, quoted, index = match.groups()
        if name is not None:
            steps.append(name)
        elif quoted is not None:
            # Only \' is an escape inside ['...']: AWS keeps other backslashes (a key may hold \").
            steps.append(quoted.replace("\\'", "'"))
        else:
            steps.append(int(index))
        pos = match.end()
    return tuple(steps)


def _is_definite(expr: Any) -> bool:
    """A path is definite when it can select at most one node (no wildcard, slice, filter, union, '..')."""
    if isinstance(expr, jsonpath_ng.Root | jsonpath_ng.This):
        return True
    if isinstance(expr, jsonpath_ng.Child):
        return _is_definite(expr.left) and _is_definite(expr.right)
    if isinstance(expr, jsonpath_ng.Fields):
        return len(expr.fields) == 1 and expr.fields[0] != "*"
    if isinstance(expr, jsonpath_ng.Index):
        return len(getattr(expr, "indices", [None])) == 1
    return False


def is_valid_path(path: Any) -> bool:
    """True when `path` is a JSONPath AWS accepts (input, context or variable rooted)."""
    try:
        compile_path(path)
    except (ValueError, TypeError):
        return False
    return True


def is_reference_path(path: Any) -> bool:
    """True for a Reference Path: a valid path that selects a single node (AWS's ResultPath etc.)."""
    try:
        return compile_path(path).definite
    except (ValueError, TypeError):
        return False


def read_path(path: str, data: Any, context: Any = None, variables: dict[str, Any] | None = None) -> Any:
    """The value `path` selects; a list for indefinite paths; raises PathNotFound when nothing matches."""
    if path == "$":
        return data
    try:
        compiled = compile_path(path)
    except (ValueError, TypeError):
        raise PathNotFound(str(path)) from None
    if compiled.root == "context":
        data = context
    elif compiled.root == "variable":
        if variables is None or compiled.variable not in variables:
            raise PathNotFound(path)
        data = variables[compiled.variable]
    if compiled.steps is not None:
        return _walk(compiled.steps, data, path)
    run = offload.runner()
    values = find_values(compiled, data) if run is None else _find_elsewhere(run, path, data)
    if compiled.definite:
        if not values:
            raise PathNotFound(path)
        return values[0]
    return values


def find_values(compiled: CompiledPath, data: Any) -> list[Any]:
    """What a jsonpath-ng path selects in `data`; work grows with each '..' (see offload.py)."""
    try:
        return [match.value for match in compiled.expr.find(data)]
    except Exception:  # jsonpath-ng raises assorted errors on odd data (filters comparing types)
        return []


def _find_elsewhere(run: offload.Runner, path: str, data: Any) -> list[Any]:
    try:
        reply = run({"kind": "jsonpath", "path": path, "data": data})
    except offload.EvaluationTimeout as exc:
        # deviation: AWS documents no time limit for JSONPath; $..*..*..* on a small input runs for hours
        raise StatesError(
            "States.Runtime", f"The JSONPath '{path}' ran longer than {exc.limit_ms} ms"
        ) from None
    except offload.EvaluationFailed as exc:
        raise StatesError(
            "States.Runtime", f"The JSONPath '{path}' could not be evaluated: {exc.reason}"
        ) from None
    if "error" in reply:
        name, cause = reply["error"]
        raise StatesError(name, cause)
    return list(reply["value"])


def _walk(steps: tuple[str | int, ...], data: Any, path: str) -> Any:
    for step in steps:
        if isinstance(step, int):
            if not isinstance(data, list) or not -len(data) <= step < len(data):
                raise PathNotFound(path)
            data = data[step]
        elif isinstance(data, dict) and step in data:
            data = data[step]
        else:
            raise PathNotFound(path)
    return data


def write_result_path(data: Any, result_path: str | None, result: Any) -> Any:
    """ResultPath: `data` with `result` placed at `result_path` (None discards the result, "$" replaces).

    Intermediate objects are created; only the objects along the path are copied.
    """
    if result_path is None:
        return data
    if result_path == "$":
        return result
    try:
        compiled = compile_path(result_path)
    except ValueError:
        raise ResultPathMatchFailure(result_path, data) from None
    if compiled.root != "input" or compiled.steps is None or not compiled.steps:
        raise ResultPathMatchFailure(result_path, data)
    return _put(data, compiled.steps, result, result_path, data)


def _put(node: Any, steps: tuple[str | int, ...], result: Any, result_path: str, whole: Any) -> Any:
    step, rest = steps[0], steps[1:]
    if node is _MISSING:
        node = {}  # a missing intermediate object is created
    if isinstance(step, int):
        if not isinstance(node, list) or not -len(node) <= step < len(node):
            raise ResultPathMatchFailure(result_path, whole)
        copy_list = list(node)
        copy_list[step] = _put(node[step], rest, result, result_path, whole) if rest else result
        return copy_list
    if not isinstance(node, dict):
        raise ResultPathMatchFailure(result_path, whole)
    copy_dict = dict(node)
    copy_dict[step] = _put(node.get(step, _MISSING), rest, result, result_path, whole) if rest else result
    return copy_dict


def _jayway(path: str) -> str:
    """Render a path the way AWS's Java JSONPath library names it in errors: $['a']['b'][0]."""
    try:
        compiled = compile_path(path)
    except ValueError:
        return path
    if compiled.steps is None:
        return path
    prefix = "$$" if compiled.root == "context" else f"${compiled.variable or ''}"
    return prefix + "".join(f"[{s}]" if isinstance(s, int) else f"['{s}']" for s in compiled.steps)
