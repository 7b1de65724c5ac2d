"""ARNs of state machines, versions, aliases, executions and activities, and AWS's naming rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .api_errors import InvalidArn, InvalidName

# AWS: names must not contain whitespace, brackets, wildcards, these special characters or
# control characters (U+0000-001F, U+007F-009F)
_BAD_NAME_CHARS = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")
_ALIAS_NAME = re.compile(r"^(?=.*[a-zA-Z_\-.])[a-zA-Z0-9_\-.]+$")
_ARN = re.compile(r"^arn:aws[a-z-]*:states:([a-z0-9-]+):(\d{12}):([A-Za-z]+):(.+)$")


@dataclass(frozen=True)
class Arn:
    """A parsed Step Functions ARN: `arn:aws:states:<region>:<account>:<kind>:<parts...>`."""

    region: str
    account: str
    kind: str
    parts: tuple[str, ...]

    @property
    def base(self) -> str:
        return f"arn:aws:states:{self.region}:{self.account}:{self.kind}:{self.parts[0]}"


def check_name(name: str, what: str = "name") -> None:
    """Raise InvalidName when `name` breaks AWS's rules for state machine, execution, activity names."""
    if not 1 <= len(name) <= 80 or _BAD_NAME_CHARS.search(name):
        raise InvalidName(f"Invalid Name: '{name}'")


def check_alias_name(name: str) -> None:
    """Raise InvalidName when an alias name is not AWS's CharacterRestrictedName (and not a number)."""
    if not _ALIAS_NAME.match(name) or len(name) > 80:
        raise InvalidName(f"Invalid Name: '{name}'")


def parse_arn(text: str, *kinds: str) -> Arn:
    """Parse `text` as a Step Functions ARN of one of `kinds`; raise InvalidArn as AWS words it."""
    match = _ARN.match(text)
    if match is None:
        raise InvalidArn(f"Invalid Arn: 'Invalid ARN prefix: {text}'")
    region, account, kind, rest = match.groups()
    if kind not in kinds:
        raise InvalidArn(f"Invalid Arn: 'Resource type not valid in this context: {kind}'")
    parts = tuple(rest.split(":"))
    if any(not part for part in parts):
        raise InvalidArn(f"Invalid Arn: '{text}'")
    return Arn(region, account, kind, parts)


class ArnMaker:
    """Builds the ARNs of one region and account."""

    def __init__(self, region: str, account: str) -> None:
        self.prefix = f"arn:aws:states:{region}:{account}"

    def state_machine(self, name: str) -> str:
        return f"{self.prefix}:stateMachine:{name}"

    def activity(self, name: str) -> str:
        return f"{self.prefix}:activity:{name}"

    def execution(self, sm_name: str, name: str, express_id: str | None = None) -> str:
        if express_id is not None:
            return f"{self.prefix}:express:{sm_name}:{name}:{express_id}"
        return f"{self.prefix}:execution:{sm_name}:{name}"
