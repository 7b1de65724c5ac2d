"""What a pipeline author wrote cannot stall the engine: the expression is stopped at its time limit, and
every other call is answered meanwhile, with one engine process or several.

Hang detectors, never timings: a call that normally takes milliseconds must answer within seconds
while a catastrophic expression runs for its 5 s (before, such a call waited hours).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine_service.conftest import EngineProcess, create_machine, history, make_client, wait_done
from tests.harness.redis_server import RedisServer

CATASTROPHIC = "{% $match('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!', /^(a+)+$/) %}"  # hours for Python's re
# far above a ListStateMachines' usual milliseconds, far below the expression's 5 s limit
ANSWER_DEADLINE_S = 2.5
LIMIT_S = 5


@pytest.fixture(scope="module", params=["1", "2"], ids=["one-process", "two-processes"])
def engine_n(
    request: pytest.FixtureRequest, redis_proc: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EngineProcess]:
    proc = EngineProcess(
        redis_proc.url, tmp_path_factory.mktemp("engine") / "engine.log", ENGINE_PROCESSES=request.param
    )
    proc.start()
    yield proc
    proc.stop()


def jsonata_pass(output: str) -> dict[str, Any]:
    return {"R": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": output, "End": True}}


def while_answering(endpoint: str, work: Callable[[], Any]) -> Any:
    """Run `work` on a thread; meanwhile ListStateMachines must answer within ANSWER_DEADLINE_S, each time."""
    done: list[Any] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(work())
        except BaseException as exc:  # handed to the test below
            failed.append(exc)

    watcher = make_client(endpoint, read_timeout=int(ANSWER_DEADLINE_S) + 1)
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    calls = 0
    give_up = time.monotonic() + 120
    while worker.is_alive() and time.monotonic() < give_up:
        began = time.monotonic()
        watcher.list_state_machines(maxResults=1)  # a read timeout here fails the test
        took = time.monotonic() - began
        assert took < ANSWER_DEADLINE_S, f"ListStateMachines took {took:.1f} s during the evaluation"
        calls += 1
        time.sleep(0.05)
    worker.join(1)
    assert not worker.is_alive(), "the call under test never ended"
    if failed:
        raise failed[0]
    assert calls >= 3, "the call under test ended before it could be watched"
    return done[0]


def test_a_catastrophic_regex_fails_its_state_and_the_engine_answers_meanwhile(
    engine_n: EngineProcess, unique: str
) -> None:
    sfn = make_client(engine_n.endpoint)
    arn = create_machine(sfn, f"regex-{unique}", jsonata_pass(CATASTROPHIC))
    started = while_answering(engine_n.endpoint, lambda: sfn.start_execution(stateMachineArn=arn, input="{}"))
    done = wait_done(sfn, started["executionArn"], timeout=60)
    assert done["status"] == "FAILED" and done["error"] == "States.QueryEvaluationError"
    assert "D1012: Evaluation timeout after 5000 milliseconds" in done["cause"]
    assert history(sfn, started["executionArn"])[-1]["type"] == "ExecutionFailed"


def test_the_time_box_holds_after_a_task_answered_on_the_event_loop(
    engine_n: EngineProcess, unique: str
) -> None:
    sfn = make_client(engine_n.endpoint)
    activity = sfn.create_activity(name=f"act-{unique}")["activityArn"]
    states = {
        "Build": {"Type": "Task", "Resource": activity, "Next": "R"},
        **jsonata_pass(CATASTROPHIC),
    }
    execution = sfn.start_execution(stateMachineArn=create_machine(sfn, f"task-{unique}", states))
    task = sfn.get_activity_task(activityArn=activity, workerName="w")
    while_answering(
        engine_n.endpoint, lambda: sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    )
    done = wait_done(sfn, execution["executionArn"], timeout=60)
    assert done["status"] == "FAILED" and done["error"] == "States.QueryEvaluationError"


def test_a_state_that_catches_its_own_timeout_and_runs_again_ends_within_the_calls_budget(
    engine: EngineProcess, unique: str
) -> None:
    sfn = make_client(engine.endpoint, read_timeout=100)
    branch = {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}
    again = {
        "Again": {
            "Type": "Parallel",
            "QueryLanguage": "JSONata",
            "Branches": [branch],
            "Output": CATASTROPHIC,
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Again"}],
            "End": True,
        }
    }
    arn = create_machine(sfn, f"again-{unique}", again)
    # a hang detector: one evaluation of 5 s, one of 1 s, then none; before, 5 s a lap until the
    # 25,000 history events ran out (hours)
    started = sfn.start_execution(stateMachineArn=arn)
    done = wait_done(sfn, started["executionArn"], timeout=60)
    assert done["status"] == "FAILED" and done["error"] == "States.Runtime"
    assert "maximum number of history events" in done["cause"]


def test_an_execution_that_loops_through_a_wait_gets_one_budget_for_all_its_laps(
    engine: EngineProcess, unique: str
) -> None:
    sfn = make_client(engine.endpoint, read_timeout=100)
    branch = {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}
    catch = [{"ErrorEquals": ["States.ALL"], "Next": "Pause", "Output": "{% $states.errorOutput %}"}]
    states = {
        "Again": {"Type": "Parallel", "QueryLanguage": "JSONata", "Branches": [branch],
                  "Output": CATASTROPHIC, "Catch": catch, "End": True},
        "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Again"},  # each lap a call of its own, on the timer thread
    }  # fmt: skip
    execution = sfn.start_execution(stateMachineArn=create_machine(sfn, f"laps-{unique}", states))[
        "executionArn"
    ]
    # a hang detector: 5 s, then the 1 s left of the execution's 6 s, then every expression of the
    # execution fails at once (its catcher's Output too); before, a lap took 6 s for hours
    done = wait_done(sfn, execution, timeout=60)
    assert done["status"] == "FAILED" and done["error"] == "States.QueryEvaluationError"
    assert "evaluated expressions for 6000 ms already" in done["cause"]
    laps = [e for e in history(sfn, execution) if e["type"] == "WaitStateEntered"]
    assert len(laps) == 1  # one lap of 5 s; the second ran out of budget


def test_a_jsonpath_that_explodes_fails_its_state_with_states_runtime(
    engine: EngineProcess, unique: str
) -> None:
    sfn = make_client(engine.endpoint)
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(90):  # 1.4 KB; $..*..*..*..* over it was hours of work
        node["n"] = {"x": 1}
        node = node["n"]
    states = {"R": {"Type": "Pass", "InputPath": "$..*..*..*..*", "End": True}}
    arn = create_machine(sfn, f"path-{unique}", states)
    started = while_answering(
        engine.endpoint, lambda: sfn.start_execution(stateMachineArn=arn, input=json.dumps(deep))
    )
    done = wait_done(sfn, started["executionArn"], timeout=60)
    assert done["status"] == "FAILED" and done["error"] == "States.Runtime"
    assert "ran longer than 5000 ms" in done["cause"]


@pytest.mark.parametrize(
    "bomb",
    ["$pad('', 2000000000)", "$reduce([1..40], function($a, $b) {$a & $a}, 'x')"],
    ids=["two-billion-characters", "a-string-doubled-forty-times"],
)
def test_memory_an_expression_allocates_is_its_workers_not_the_engines(
    engine: EngineProcess, unique: str, bomb: str
) -> None:
    sfn = make_client(engine.endpoint)
    arn = create_machine(sfn, f"memory-{unique}", jsonata_pass("{% " + bomb + " %}"))
    execution = sfn.start_execution(stateMachineArn=arn)
    done = wait_done(sfn, execution["executionArn"], timeout=60)
    assert done["status"] == "FAILED" and done["error"] == "States.QueryEvaluationError"
    assert "MemoryError" in done["cause"]
    assert sfn.list_state_machines(maxResults=1)["stateMachines"]  # still serving


def test_test_state_is_time_boxed_too(engine: EngineProcess) -> None:
    sfn = make_client(engine.endpoint)
    state = json.dumps({"Type": "Pass", "QueryLanguage": "JSONata", "Output": CATASTROPHIC, "End": True})
    answer = while_answering(
        engine.endpoint,
        lambda: sfn.test_state(definition=state, roleArn="arn:aws:iam::123456789012:role/r", input="{}"),
    )
    assert answer["status"] == "FAILED" and answer["error"] == "States.QueryEvaluationError"


def test_no_expression_worker_outlives_a_sigkilled_engine(
    redis_proc: RedisServer, tmp_path: Path, unique: str
) -> None:
    proc = EngineProcess(redis_proc.url, tmp_path / "engine.log")
    proc.start()
    try:
        sfn = make_client(proc.endpoint, read_timeout=2)
        arn = create_machine(sfn, f"orphan-{unique}", jsonata_pass(CATASTROPHIC))
        threading.Thread(
            target=lambda: _ignore_errors(lambda: sfn.start_execution(stateMachineArn=arn)), daemon=True
        ).start()
        assert proc.proc is not None
        deadline = time.monotonic() + 30
        while not (workers := _children(proc.proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert workers, "no expression worker started"
        proc.kill()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in workers)
    finally:
        proc.stop()


def _ignore_errors(call: Callable[[], Any]) -> None:
    try:
        call()
    except Exception:  # the engine is killed under this call on purpose
        return


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
