"""The Amazon States Language core: a pure interpreter that never touches Redis, sockets or threads.

Its contract with the rest of Stepline:
- the durable service (`statemachines/engine/`) loads a definition with `definition.load_definition`,
  runs it through `interpreter.Interpreter` one transition at a time, and answers TestState with
  `teststate.run_test_state` (a refused request raises `teststate_request.TestStateRejected`);
- `service/pipeline_source.py` and `python -m statemachines check` validate a pipeline with
  `validation.validate_definition` before anything is deployed;
- failures are `errors.StatesError` carrying AWS's error names (`States.Runtime`, ...).

It imports nothing outside itself but `statemachines.nesting` (how deep a document may nest), and
the expression worker processes (`statemachines/engine/expression_pool.py`) are given to it from
outside through `offload`.
"""
