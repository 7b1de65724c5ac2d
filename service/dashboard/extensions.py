"""The dashboard's shared objects, built once per app: the run details it reads and the actions it takes."""

from __future__ import annotations

from flask import Flask, current_app
from rq import Queue

from service.approvals import ApprovalStore
from service.config import ServiceConfig
from service.dashboard.execution_reader import ExecutionReader
from service.dashboard.run_details import RunDetails
from service.job_context import JobContext
from service.run_actions import Actions
from service.run_index import RunIndex
from service.sfn import make_sfn_client
from service.status_ledger import StatusLedger
from statemachines import queues
from statemachines.step_logs import StepLogReader
from statemachines.worker_presence import served

DETAILS = "stepline_details"
ACTIONS = "stepline_actions"


def init_app(app: Flask, config: ServiceConfig) -> None:
    """One Step Functions client per app, shared by what the pages read and what the actions do."""
    client = app.extensions["redis"]
    sfn = make_sfn_client(config)
    index = RunIndex(client)
    store = ApprovalStore(client)
    ctx = JobContext(config, client, index, sfn, Queue(queues.STATUSES, connection=client))
    app.extensions[DETAILS] = RunDetails(
        index,
        ExecutionReader(sfn, client),
        StepLogReader(client),
        store,
        StatusLedger(client),
        config.status_prefix,
        lambda activity: served(client, activity),
        config.state_machine_prefix,
    )
    app.extensions[ACTIONS] = Actions(ctx, store)


def details() -> RunDetails:
    return current_app.extensions[DETAILS]


def actions() -> Actions:
    return current_app.extensions[ACTIONS]
