"""The States.* intrinsic functions: a cached parser and the evaluator (bodies in intrinsic_functions).

Runtime argument errors are States.Runtime (what AWS reports, not States.IntrinsicFailure) with
the cause "There was an error while evaluating the intrinsic function: <call>. Invalid arguments
in States.<Name>"; the interpreter prefixes the "An error occurred while executing the state ..." part.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from .errors import StatesError
from .intrinsic_functions import (
    ARITY,
    FUNCTIONS,
    FormatTemplate,
    IntrinsicArgumentError,
    Randomness,
    unescape,
)
from .paths import PathNotFound, compile_path, read_path, to_json_text


class IntrinsicSyntaxError(ValueError):
    """Raised when a string is not a well-formed intrinsic function call."""


@dataclass(frozen=True)
class Call:
    """A parsed call: `States.Name(arg, ...)`; args are Call, Literal or Path."""

    name: str
    args: tuple[Any, ...]
    text: str


@dataclass(frozen=True)
class Literal:
    value: Any
    raw: str | None = None  # a string literal as written (escapes kept), for States.Format templates


@dataclass(frozen=True)
class Path:
    path: str


_NAME = re.compile(r"States\.[A-Za-z0-9]+")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z]+")


def looks_like_intrinsic(text: Any) -> bool:
    """True when a ".$" value is meant as an intrinsic call rather than a path."""
    return isinstance(text, str) and text.startswith("States.")


@functools.lru_cache(maxsize=2048)
def parse_intrinsic(text: str) -> Call:
    """Parse `States.X(...)` once; raises IntrinsicSyntaxError with a reason."""
    parser = _Parser(text)
    call = parser.call()
    if parser.pos != len(text):
        raise IntrinsicSyntaxError(f"unexpected text after the call at position {parser.pos}")
    return call


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def call(self) -> Call:
        start = self.pos
        match = _NAME.match(self.text, self.pos)
        if not match:
            raise IntrinsicSyntaxError(f"expected an intrinsic function name at position {self.pos}")
        name = match.group(0)
        if name not in FUNCTIONS:
            raise IntrinsicSyntaxError(f"unknown intrinsic function {name}")
        self.pos = match.end()
        self.expect("(")
        args: list[Any] = []
        self.skip_spaces()
        if not self.peek(")"):
            args.append(self.argument())
            self.skip_spaces()
            while self.peek(","):
                self.pos += 1
                args.append(self.argument())
                self.skip_spaces()
        self.expect(")")
        low, high = ARITY[name]
        if len(args) < low or (high is not None and len(args) > high):
            raise IntrinsicSyntaxError(f"wrong number of arguments to {name}: {len(args)}")
        return Call(name, tuple(args), self.text[start : self.pos])

    def argument(self) -> Any:
        self.skip_spaces()
        char = self.text[self.pos : self.pos + 1]
        if char == "'":
            raw = self.string()
            return Literal(unescape(raw), raw)
        if char == "$":
            return self.path()
        if self.text.startswith("States.", self.pos):
            return self.call()
        number = _NUMBER.match(self.text, self.pos)
        if number:
            self.pos = number.end()
            value = number.group(0)
            return Literal(float(value) if number.group(1) or number.group(2) else int(value))
        word = _WORD.match(self.text, self.pos)
        if word and word.group(0) in ("true", "false", "null"):
            self.pos = word.end()
            return Literal({"true": True, "false": False, "null": None}[word.group(0)])
        raise IntrinsicSyntaxError(f"unexpected argument at position {self.pos}")

    def string(self) -> str:
        """A quoted literal; \\' \\{ \\} \\\\ are escapes and stay escaped for States.Format."""
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos : self.pos + 2])
                self.pos += 2
                continue
            if char == "'":
                self.pos += 1
                return "".join(out)
            out.append(char)
            self.pos += 1
        raise IntrinsicSyntaxError("unterminated string literal")

    def path(self) -> Path:
        # A path ends at the first top-level ',' or ')'; brackets and quotes (filters) nest.
        start, depth, quote = self.pos, 0, ""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if quote:
                quote = "" if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char in "[(":
                depth += 1
            elif char in "])":
                if depth == 0:
                    break
                depth -= 1
            elif char == "," and depth == 0:
                break
            self.pos += 1
        path = self.text[start : self.pos].strip()
        try:
            compile_path(path)
        except ValueError as exc:
            raise IntrinsicSyntaxError(f"invalid path argument {path!r}") from exc
        return Path(path)

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def peek(self, char: str) -> bool:
        return self.text.startswith(char, self.pos)

    def expect(self, char: str) -> None:
        self.skip_spaces()
        if not self.peek(char):
            raise IntrinsicSyntaxError(f"expected {char!r} at position {self.pos}")
        self.pos += 1


def evaluate_intrinsic(
    expr: str, data: Any, context: Any, variables: dict[str, Any] | None, rng: Randomness
) -> Any:
    """Evaluate an intrinsic call string; every failure is a StatesError named as AWS names it."""
    try:
        call = parse_intrinsic(expr)
    except IntrinsicSyntaxError as exc:
        raise StatesError("States.IntrinsicFailure", f"Invalid intrinsic function {expr}: {exc}") from None
    return _evaluate(call, data, context, variables, rng)


def _evaluate(call: Call, data: Any, context: Any, variables: dict[str, Any] | None, rng: Randomness) -> Any:
    args: list[Any] = []
    for arg in call.args:
        if isinstance(arg, Literal):
            is_template = arg.raw is not None and call.name == "States.Format" and not args
            args.append(FormatTemplate(arg.raw) if is_template else arg.value)
        elif isinstance(arg, Path):
            try:
                args.append(read_path(arg.path, data, context, variables))
            except PathNotFound:
                source = context if arg.path.startswith("$$") else data
                raise StatesError(
                    "States.Runtime",
                    f"There was an error while evaluating the intrinsic function: {call.text}. "
                    f"The JsonPath argument for the field '{arg.path}' could not be found in the input "
                    f"'{to_json_text(source)}'",
                ) from None
        else:
            args.append(_evaluate(arg, data, context, variables, rng))
    try:
        return FUNCTIONS[call.name](args, rng)
    except StatesError:
        raise  # the injected randomness may fail with its own AWS-named error
    except Exception as exc:  # IntrinsicArgumentError, and any surprise from odd data, is AWS's one error
        detail = f": {exc}" if isinstance(exc, IntrinsicArgumentError) and str(exc) else ""
        raise StatesError(
            "States.Runtime",
            f"There was an error while evaluating the intrinsic function: {call.text}. "
            f"Invalid arguments in {call.name}{detail}",
        ) from None
