"""Which fields each ASL state type accepts, per query language, and the Task resources AWS recognises."""

from __future__ import annotations

import re

STATE_TYPES = ("Task", "Pass", "Wait", "Choice", "Parallel", "Map", "Succeed", "Fail")
QUERY_LANGUAGES = ("JSONPath", "JSONata")
TOP_LEVEL_FIELDS = frozenset({"Comment", "StartAt", "States", "Version", "TimeoutSeconds", "QueryLanguage"})
# AWS's ranges: seconds (TimeoutSeconds, HeartbeatSeconds, Wait's Seconds, IntervalSeconds) and
# MaxAttempts up to 99999999; MaxDelaySeconds below 31622401 (a year and a day)
MAX_SECONDS = 99_999_999
MAX_ATTEMPTS = 99_999_999
MAX_DELAY_SECONDS = 31_622_400

_COMMON = {"Type", "Comment", "QueryLanguage"}
_FLOW = {"Next", "End"}
_ERRORS = {"Retry", "Catch"}

# Fields a state type accepts whatever its query language.
SHARED_FIELDS: dict[str, frozenset[str]] = {
    "Task": frozenset(
        _COMMON
        | _FLOW
        | _ERRORS
        | {"Resource", "TimeoutSeconds", "HeartbeatSeconds", "Credentials", "Assign"}
    ),
    "Pass": frozenset(_COMMON | _FLOW | {"Assign"}),
    "Wait": frozenset(_COMMON | _FLOW | {"Seconds", "Timestamp", "Assign"}),
    "Choice": frozenset(_COMMON | {"Choices", "Default", "Assign"}),
    "Parallel": frozenset(_COMMON | _FLOW | _ERRORS | {"Branches", "Assign"}),
    "Map": frozenset(
        _COMMON
        | _FLOW
        | _ERRORS
        | {
            "ItemProcessor",
            "Iterator",
            "ItemSelector",
            "MaxConcurrency",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "Label",
            "ToleratedFailureCount",
            "ToleratedFailurePercentage",
            "Assign",
        }
    ),
    "Succeed": frozenset(_COMMON),
    "Fail": frozenset(_COMMON | {"Error", "Cause"}),
}

# Fields only JSONPath states accept (the five I/O fields and every "...Path" field).
JSONPATH_FIELDS: dict[str, frozenset[str]] = {
    "Task": frozenset(
        {"InputPath", "OutputPath", "ResultPath", "Parameters", "ResultSelector"}
        | {"TimeoutSecondsPath", "HeartbeatSecondsPath"}
    ),
    "Pass": frozenset({"InputPath", "OutputPath", "ResultPath", "Parameters", "Result"}),
    "Wait": frozenset({"InputPath", "OutputPath", "SecondsPath", "TimestampPath"}),
    "Choice": frozenset({"InputPath", "OutputPath"}),
    "Parallel": frozenset({"InputPath", "OutputPath", "ResultPath", "Parameters", "ResultSelector"}),
    "Map": frozenset(
        {"InputPath", "OutputPath", "ResultPath", "Parameters", "ResultSelector", "ItemsPath"}
        | {"MaxConcurrencyPath", "ToleratedFailureCountPath", "ToleratedFailurePercentagePath"}
    ),
    "Succeed": frozenset({"InputPath", "OutputPath"}),
    "Fail": frozenset({"ErrorPath", "CausePath"}),
}

# Fields only JSONata states accept.
JSONATA_FIELDS: dict[str, frozenset[str]] = {
    "Task": frozenset({"Arguments", "Output"}),
    "Pass": frozenset({"Output"}),
    "Wait": frozenset({"Output"}),
    "Choice": frozenset({"Output"}),
    "Parallel": frozenset({"Arguments", "Output"}),
    "Map": frozenset({"Items", "Output"}),
    "Succeed": frozenset({"Output"}),
    "Fail": frozenset(),
}

RETRIER_FIELDS = frozenset(
    {
        "ErrorEquals",
        "IntervalSeconds",
        "MaxAttempts",
        "BackoffRate",
        "MaxDelaySeconds",
        "JitterStrategy",
        "Comment",
    }
)
CATCHER_FIELDS = {
    "JSONPath": frozenset({"ErrorEquals", "Next", "ResultPath", "Assign", "Comment"}),
    "JSONata": frozenset({"ErrorEquals", "Next", "Output", "Assign", "Comment"}),
}
BRANCH_FIELDS = frozenset({"StartAt", "States", "Comment", "QueryLanguage"})
PROCESSOR_FIELDS = frozenset({"StartAt", "States", "Comment", "ProcessorConfig", "QueryLanguage"})
PROCESSOR_CONFIG_FIELDS = frozenset({"Mode", "ExecutionType"})
CHOICE_RULE_JSONATA_FIELDS = frozenset({"Condition", "Next", "Assign", "Output", "Comment"})

# The Distributed Map's configuration objects and the fields each accepts.
DISTRIBUTED_FIELDS: dict[str, frozenset[str]] = {
    "ItemReader": frozenset({"Resource", "Parameters", "Arguments", "ReaderConfig"}),
    "ItemBatcher": frozenset(
        {
            "MaxItemsPerBatch",
            "MaxItemsPerBatchPath",
            "MaxInputBytesPerBatch",
            "MaxInputBytesPerBatchPath",
            "BatchInput",
        }
    ),
    "ResultWriter": frozenset({"Resource", "Parameters", "Arguments", "WriterConfig"}),
}

# AWS's optimised service integrations (arn:aws:states:::<service>:<action>[.<pattern>]).
# None: any action is accepted for that service.
SERVICE_ACTIONS: dict[str, frozenset[str] | None] = {
    "lambda": frozenset({"invoke"}),
    "dynamodb": frozenset({"getItem", "putItem", "updateItem", "deleteItem"}),
    "sns": frozenset({"publish"}),
    "sqs": frozenset({"sendMessage"}),
    "states": frozenset({"startExecution"}),
    "s3": frozenset({"getObject", "putObject", "listObjectsV2"}),
    "events": frozenset({"putEvents"}),
    "http": frozenset({"invoke"}),
    "apigateway": frozenset({"invoke"}),
    "batch": frozenset({"submitJob"}),
    "ecs": frozenset({"runTask"}),
    "glue": frozenset({"startJobRun", "startCrawler"}),
    "athena": None,
    "bedrock": None,
    "codebuild": None,
    "eks": None,
    "elasticmapreduce": None,
    "emr-containers": None,
    "emr-serverless": None,
    "databrew": None,
    "mediaconvert": None,
    "sagemaker": None,
    "states-activity": None,
    "aws-sdk": None,
}
_PATTERNS = {"", ".sync", ".sync:2", ".waitForTaskToken"}
_INTEGRATION = re.compile(r"^arn:aws[a-z-]*:states:::([a-z0-9-]+):([A-Za-z0-9:.-]+)$")
ACTIVITY_ARN = re.compile(r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:activity:[A-Za-z0-9_.-]+$")
LAMBDA_ARN = re.compile(
    r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9$_-]+)?$"
)


def is_recognized_resource(resource: str) -> bool:
    """True for an activity ARN, a Lambda function ARN, or an optimised integration AWS knows."""
    if ACTIVITY_ARN.match(resource) or LAMBDA_ARN.match(resource):
        return True
    match = _INTEGRATION.match(resource)
    if not match:
        return False
    service, rest = match.groups()
    actions = SERVICE_ACTIONS.get(service, frozenset())
    if actions is None:
        return True
    action, dot, pattern = rest.partition(".")
    return action in actions and (dot + pattern) in _PATTERNS
