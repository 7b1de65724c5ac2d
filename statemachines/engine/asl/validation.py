"""Static validation of an ASL definition: every problem at once, each located by its JSON path."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from . import offload
from .errors import Diagnostic
from .fields import (
    JSONATA_FIELDS,
    JSONPATH_FIELDS,
    MAX_SECONDS,
    QUERY_LANGUAGES,
    SHARED_FIELDS,
    STATE_TYPES,
    TOP_LEVEL_FIELDS,
)
from .intrinsics import IntrinsicSyntaxError, looks_like_intrinsic, parse_intrinsic
from .jsonata_query import compile_jsonata, is_template, template_expression
from .paths import compile_path, is_reference_path, is_valid_path
from .validation_rules import check_catchers, check_retriers
from .validation_states import STATE_CHECKS

SCHEMA = "SCHEMA_VALIDATION_FAILED"
TRANSITION = "MISSING_TRANSITION_TARGET"
_VARIABLE_NAME = re.compile(r"^[^\W\d]\w*$")  # a letter or underscore, then word characters


class Checker:
    """Collects diagnostics while walking one definition."""

    def __init__(self, machine_type: str) -> None:
        self.machine_type = machine_type
        self.diagnostics: list[Diagnostic] = []
        self.state_names: set[str] = set()  # AWS: names are unique across the whole machine

    def warning(self, code: str, message: str, location: str) -> None:
        self.diagnostics.append(Diagnostic(code, message, location or "/", "WARNING"))

    def error(self, code: str, message: str, location: str) -> None:
        self.diagnostics.append(Diagnostic(code, message, location or "/"))

    def transition(self, target: Any, states: dict[str, Any], location: str) -> None:
        """Check a Next/Default value: a string naming a state of the same scope."""
        if not isinstance(target, str):
            self.error(SCHEMA, "A transition target must be a state name (a string)", location)
        elif target not in states:
            self.error(TRANSITION, f"Missing 'Next' target: {target}", location)

    def unknown_fields(self, obj: dict[str, Any], allowed: Iterable[str], location: str) -> None:
        allowed = set(allowed)
        for key in obj:
            if key not in allowed:
                self.error(SCHEMA, f'The field "{key}" is not supported by Step Functions', location)

    def required(self, obj: dict[str, Any], fields: Iterable[str], location: str) -> None:
        for name in fields:
            if name not in obj:
                self.error(SCHEMA, f"The field '{name}' is required but was missing", location)

    def path(self, value: Any, location: str, *, reference: bool = False, nullable: bool = True) -> None:
        """A JSONPath field (InputPath, ItemsPath, ...): a valid path, or null where allowed."""
        if value is None and nullable:
            return
        ok = is_reference_path(value) if reference else is_valid_path(value)
        if not ok:
            kind = "a valid reference path" if reference else "a valid JSONPath"
            self.error(SCHEMA, f"The value for the field must be {kind}: {value!r}", location)

    def result_path(self, value: Any, location: str) -> None:
        if value is None:
            return
        if not is_reference_path(value) or compile_path(value).root != "input":
            self.error(
                SCHEMA,
                f"The value for the field 'ResultPath' must be a valid ReferencePath: {value!r}",
                location,
            )

    def expression(self, value: Any, location: str) -> None:
        """The value of a ".$" key: a path or an intrinsic function call."""
        if looks_like_intrinsic(value):
            try:
                parse_intrinsic(value)
            except IntrinsicSyntaxError as exc:
                self.error(
                    SCHEMA, f"The value for the field is not a valid intrinsic function: {exc}", location
                )
        elif not is_valid_path(value):
            field = location.rsplit("/", 1)[-1]
            self.error(
                SCHEMA,
                f"The value for the field '{field}' must be a valid JSONPath or a valid intrinsic function call",
                location,
            )

    def payload(self, template: Any, location: str, *, literal_templates: bool = False) -> None:
        """A JSONPath payload template (Parameters, ResultSelector, ItemSelector, Assign).

        `literal_templates`: a "{% %}" string is a plain literal here (a JSONPath Assign value).
        """
        if isinstance(template, dict):
            for key, value in template.items():
                where = f"{location}/{key}"
                if key.endswith(".$"):
                    self.expression(value, where)
                else:
                    if isinstance(value, str) and (value.startswith("$.") or looks_like_intrinsic(value)):
                        self.warning(
                            "NO_DOLLAR",
                            "No .$ on a field that appears to be a JSONPath or Intrinsic Function.",
                            where,
                        )
                    self.payload(value, where, literal_templates=literal_templates)
        elif isinstance(template, list):
            for index, item in enumerate(template):
                self.payload(item, f"{location}[{index}]", literal_templates=literal_templates)
        elif is_template(template) and not literal_templates:
            # deviation: a JSONata expression in a JSONPath Parameters/ResultSelector/ItemSelector
            # would silently stay a string: we reject it (AWS's rule is not documented)
            self.error(
                SCHEMA, "JSONata expressions are only supported when QueryLanguage is JSONata", location
            )

    def jsonata(self, value: Any, location: str) -> None:
        """Every "{% %}" string inside a JSONata field must compile."""
        if isinstance(value, str):
            if is_template(value):
                try:
                    compile_jsonata(template_expression(value))
                except ValueError as exc:
                    self.error(SCHEMA, f"The JSONata expression is not valid: {exc}", location)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.jsonata(item, f"{location}/{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.jsonata(item, f"{location}[{index}]")

    def assign(self, assign: Any, language: str, location: str) -> None:
        if not isinstance(assign, dict):
            self.error(SCHEMA, "The field 'Assign' must be an object", location)
            return
        for key in assign:
            name = key[:-2] if language == "JSONPath" and key.endswith(".$") else key
            if not _VARIABLE_NAME.match(name) or len(name) > 80 or name == "states":
                self.error(SCHEMA, f"The variable name '{name}' is not valid", f"{location}/{key}")
        if language == "JSONPath":
            # a JSONPath Assign stores its literal values as they are ("Assign": {"productName":
            # "product1", ...} in the variables guide), "{% %}"-looking strings included
            self.payload(assign, location, literal_templates=True)
        else:
            self.jsonata(assign, location)

    def integer(
        self,
        state: dict[str, Any],
        field: str,
        language: str,
        location: str,
        *,
        least: int,
        most: int | None = None,
    ) -> None:
        if field not in state:
            return
        value = state[field]
        if language == "JSONata" and is_template(value):
            self.jsonata(value, f"{location}/{field}")
        elif (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < least
            or (most is not None and value > most)
        ):
            allowed = f"of at least {least}" if most is None else f"from {least} to {most}"
            self.error(SCHEMA, f"The field '{field}' must be an integer {allowed}", f"{location}/{field}")

    def scope(self, scope: dict[str, Any], location: str, language: str) -> None:
        """A nested StartAt/States scope (a Parallel branch, a Map processor)."""
        check_scope(self, scope, location, language)

    def exclusive(self, state: dict[str, Any], fields: tuple[str, ...], location: str) -> None:
        present = [name for name in fields if name in state]
        if len(present) > 1:
            self.error(SCHEMA, f"The fields {', '.join(present)} are mutually exclusive", location)


def validate_definition(doc: Any, machine_type: str = "STANDARD") -> list[Diagnostic]:
    """Every problem in `doc` (a parsed definition) as AWS's ValidateStateMachineDefinition reports them."""
    checker = Checker(machine_type)
    if not isinstance(doc, dict):
        checker.error(SCHEMA, "The definition must be a JSON object", "/")
        return checker.diagnostics
    checker.unknown_fields(doc, TOP_LEVEL_FIELDS, "")
    language = doc.get("QueryLanguage", "JSONPath")
    if language not in QUERY_LANGUAGES:
        checker.error(SCHEMA, "The field 'QueryLanguage' must be one of JSONPath, JSONata", "/QueryLanguage")
        language = "JSONPath"
    if "TimeoutSeconds" in doc:
        checker.integer(doc, "TimeoutSeconds", "JSONPath", "", least=1, most=MAX_SECONDS)
    if "Comment" in doc and not isinstance(doc["Comment"], str):
        checker.error(SCHEMA, "The field 'Comment' must be a string", "/Comment")
    if "Version" in doc and not isinstance(doc["Version"], str):
        checker.error(SCHEMA, "The field 'Version' must be a string", "/Version")
    check_scope(checker, doc, "", language)
    return checker.diagnostics


def check_scope(checker: Checker, scope: dict[str, Any], location: str, language: str) -> None:
    """One StartAt/States scope (the machine, a Parallel branch, a Map processor)."""
    checker.required(scope, ("StartAt", "States"), location)
    states = scope.get("States")
    if not isinstance(states, dict) or not states:
        if "States" in scope:
            checker.error(SCHEMA, "The field 'States' must be a non-empty object", f"{location}/States")
        return
    start = scope.get("StartAt")
    if "StartAt" in scope and (not isinstance(start, str) or start not in states):
        checker.error(TRANSITION, f"Missing 'Next' target: {start}", f"{location}/StartAt")
    for name, state in states.items():
        if name in checker.state_names:
            checker.error(
                "DUPLICATE_STATE_NAME", f"Duplicate State name: {name}", f"{location}/States/{name}"
            )
        checker.state_names.add(name)
        offload.checkpoint()  # a 1 MiB definition validates for seconds: the service may move the call
        check_state(checker, name, state, states, f"{location}/States/{name}", language)
    if not any(_is_terminal(state) for state in states.values()):
        checker.error("MISSING_END_STATE", "Workflow has no terminal state", f"{location}/States")
    if isinstance(start, str) and start in states:
        reachable = _reachable(states, start)
        for name in states:
            if name not in reachable:
                checker.error(TRANSITION, f'State "{name}" is not reachable.', f"{location}/States/{name}")


def _is_terminal(state: Any) -> bool:
    return isinstance(state, dict) and (state.get("End") is True or state.get("Type") in ("Succeed", "Fail"))


def _reachable(states: dict[str, Any], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        todo.extend(transitions(states[name]))
    return seen


def transitions(state: Any) -> list[str]:
    """Every state name a state can move to (Next, Default, each choice's and catcher's Next)."""
    if not isinstance(state, dict):
        return []
    targets = [state.get("Next"), state.get("Default")]
    for group in ("Choices", "Catch"):
        items = state.get(group)
        if isinstance(items, list):
            targets.extend(item.get("Next") for item in items if isinstance(item, dict))
    return [target for target in targets if isinstance(target, str)]


def check_state(
    checker: Checker, name: str, state: Any, states: dict[str, Any], location: str, inherited: str
) -> None:
    if len(name) > 80:
        checker.error("INVALID_STATE_NAME", f"State name '{name}' is longer than 80 characters", location)
    if not isinstance(state, dict):
        checker.error(SCHEMA, "A state must be a JSON object", location)
        return
    kind = state.get("Type")
    if kind not in STATE_TYPES:
        checker.error(SCHEMA, f"The field 'Type' must be one of {', '.join(STATE_TYPES)}", f"{location}/Type")
        return
    language = state.get("QueryLanguage", inherited)
    if language not in QUERY_LANGUAGES:
        checker.error(
            SCHEMA, "The field 'QueryLanguage' must be one of JSONPath, JSONata", f"{location}/QueryLanguage"
        )
        language = inherited
    elif inherited == "JSONata" and language == "JSONPath":
        checker.error(
            SCHEMA,
            "A state cannot use JSONPath when the state machine uses JSONata",
            f"{location}/QueryLanguage",
        )
    own = JSONPATH_FIELDS if language == "JSONPath" else JSONATA_FIELDS
    checker.unknown_fields(state, SHARED_FIELDS[kind] | own[kind], location)
    _check_flow(checker, kind, state, states, location)
    for index, catcher in enumerate(state.get("Catch") or []):
        if isinstance(catcher, dict) and "Next" in catcher:
            checker.transition(catcher["Next"], states, f"{location}/Catch[{index}]/Next")
    _check_io(checker, kind, state, language, location)
    STATE_CHECKS[kind](checker, state, states, location, language)


def _check_flow(
    checker: Checker, kind: str, state: dict[str, Any], states: dict[str, Any], location: str
) -> None:
    if kind in ("Choice", "Succeed", "Fail"):
        return
    has_next, ends = "Next" in state, state.get("End") is True
    if "End" in state and not isinstance(state["End"], bool):
        checker.error(SCHEMA, "The field 'End' must be a boolean", f"{location}/End")
    if has_next == ends:
        checker.error(SCHEMA, "Exactly one of the fields 'Next' or 'End' is required", location)
    if has_next:
        checker.transition(state["Next"], states, f"{location}/Next")


def _check_io(checker: Checker, kind: str, state: dict[str, Any], language: str, location: str) -> None:
    for field in ("InputPath", "OutputPath"):
        if field in state and language == "JSONPath":
            checker.path(state[field], f"{location}/{field}")
    if "ResultPath" in state and language == "JSONPath":
        checker.result_path(state["ResultPath"], f"{location}/ResultPath")
    for field in ("Parameters", "ResultSelector", "ItemSelector"):
        if field in state:
            if language == "JSONPath":
                checker.payload(state[field], f"{location}/{field}")
            else:
                checker.jsonata(state[field], f"{location}/{field}")
    if language == "JSONata":
        for field in ("Arguments", "Output", "Items"):
            if field in state:
                checker.jsonata(state[field], f"{location}/{field}")
    if "Assign" in state:
        checker.assign(state["Assign"], language, f"{location}/Assign")
    if "Retry" in state:
        check_retriers(checker, state["Retry"], f"{location}/Retry")
    if "Catch" in state:
        check_catchers(checker, state["Catch"], language, f"{location}/Catch")
