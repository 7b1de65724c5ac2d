"""Choice: picks the next state from ordered rules, or Default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import choice_rules, io_processing
from .errors import StatesError
from .frame import Frame
from .io_processing import Scope
from .state_base import State

if TYPE_CHECKING:
    from .runtime import Runtime

NO_MATCH_CAUSE = "No Matches!"


class ChoiceState(State):
    """ "A Choice state adds branching logic": the first rule that matches names the next state.

    A matched rule's own Assign/Output (JSONata) replace the state's for that transition.
    """

    type_name = "Choice"
    has_parameters = False

    def run(self, rt: Runtime, frame: Frame, value: Any, scope: Scope) -> Any:
        for index, rule in enumerate(self.defn.get("Choices", [])):
            if self.rule_matches(rule, frame["in"], value, scope):
                frame["x"]["r"] = index
                return value
        if self.defn.get("Default") is None:
            raise StatesError("States.NoChoiceMatched", NO_MATCH_CAUSE)
        return value

    def rule_matches(self, rule: dict[str, Any], raw: Any, value: Any, scope: Scope) -> bool:
        if not self.jsonata:
            return bool(choice_rules.evaluate_choice_rule(rule, value, scope.context, scope.variables))
        return io_processing.evaluate_condition(rule.get("Condition"), scope.states(raw), scope)

    def finish(self, rt: Runtime, frame: Frame, result: Any, next_state: str | None = None) -> None:
        index = frame["x"].get("r")
        if index is None:
            super().finish(rt, frame, result, self.defn["Default"])
            return
        rule = self.defn["Choices"][index]
        scope = self.scope(rt, frame)
        try:
            output, assigned = self.rule_output(frame["in"], result, rule, scope)
        except Exception as err:  # bad data must fail the state, never escape the core
            rt.fail_frame(frame, self.runtime_failure(rt, frame, err))
            return
        self.leave(rt, frame, output, assigned, rule["Next"])

    def rule_output(
        self, raw: Any, result: Any, rule: dict[str, Any], scope: Scope
    ) -> tuple[Any, dict[str, Any] | None]:
        """A matched rule's own Assign/Output take the place of the state's."""
        overrides: dict[str, Any] = {key: rule[key] for key in ("Assign", "Output") if key in rule}
        return self.process_output(raw, result, scope, {**self.defn, **overrides} if overrides else None)

    def handle_failure(self, rt: Runtime, frame: Frame, failure: Any) -> None:
        rt.fail_frame(frame, failure)  # Choice has no Retry or Catch
