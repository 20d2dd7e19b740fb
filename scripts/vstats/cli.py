"""Shared command-line plumbing: every tool reports bad input as one line and exit status 2,
and a failure of AWS (or of the local endpoint) as one line and exit status 1."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from localcloud.client import ControlAPIError
from rich.console import Console

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad input from the operator: exit status 2."""


class ToolError(Exception):
    """The tool could not do its work (AWS, the local endpoint, a missing program): status 1."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse without the multi-line usage dump: an error is one line (the caller prints it).

    Subparsers inherit this class, so their errors are one line too.
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def aws_error_message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "request")
        return one_line(f"{operation} failed: {error.get('Code', '?')}: {error.get('Message', '')}")
    return one_line(str(exc))


def run(prog: str, body: Callable[[], int]) -> int:
    """Run a tool's body and turn its exceptions into one line on stderr and an exit status."""
    try:
        return body()
    except UsageError as exc:
        print(f"{prog}: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except (ToolError, ControlAPIError) as exc:
        print(f"{prog}: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except (BotoCoreError, ClientError) as exc:
        print(f"{prog}: {aws_error_message(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def print_lines(lines: Iterable[Any]) -> None:
    """Print rich renderables to stdout; piped or logged output keeps its columns (rich
    assumes 80 without a terminal)."""
    console = Console() if sys.stdout.isatty() else Console(width=160)
    for line in lines:
        console.print(line)


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    return parser.parse_args(list(argv) if argv is not None else None)


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def entity_id(text: str) -> str:
    """A user or video id as it appears in keys: non-empty, no '#' (the key separator)."""
    if not text or "#" in text or text != text.strip():
        raise argparse.ArgumentTypeError(
            f"invalid id {text!r}: must be non-empty, without '#' or surrounding spaces"
        )
    return text


def value_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type`` from a parser that raises ValueError: its message becomes the
    one-line error (argparse would say only "invalid value")."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


def positive_int_at_most(limit: int, unit: str = "") -> Callable[[str], int]:
    """An argparse ``type``: a whole number from 1 to ``limit`` (``unit`` names it in errors)."""

    def parse(text: str) -> int:
        value = positive_int(text)
        if value > limit:
            named = f" {unit}" if unit else ""
            raise argparse.ArgumentTypeError(f"at most {limit:,}{named}, got {value:,}")
        return value

    parse.__name__ = "positive_int"
    return parse
