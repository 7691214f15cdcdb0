"""The command line's usage errors: argparse's refusals reported with the command's own usage, the
option meant for a mistyped one, and JSON for the client book's commands (:func:`qpo.cli.main`)."""
from __future__ import annotations

import argparse
import json
import sys


class UsageError(Exception):
    """A command line argparse refused (``ArgumentParser.error``): :func:`main` reports it."""

    def __init__(self, parser: argparse.ArgumentParser, message: str):
        self.parser, self.message = parser, message
        super().__init__(message)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        # no abbreviations: `qpo nightly value --as ADMIN` was read as --as-of and `--max-t` as any
        # option it began; an option is named whole (a mistyped one gets the closest: _unrecognized)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(self, message)


#: the client book's commands: JSON errors and exit statuses 2 / 3 / 4 (:mod:`qpo.cli._common`)
BOOK_COMMANDS = ("user", "portfolio", "rebalance", "audit", "alerts")


def _command_of(argv: list[str]) -> str | None:
    """The top-level command named in ``argv`` (after the global ``--as EMAIL``)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token == "--as":
            skip = True
        elif not token.startswith("-"):
            return token
    return None


def _unrecognized(parser: argparse.ArgumentParser, argv: list[str], message: str) -> tuple[argparse.ArgumentParser, str]:
    """The deepest subcommand's parser that ``argv`` names (argparse reports unrecognized arguments
    from the top one), and ``message`` with the closest of its options to each unknown one."""
    import difflib

    for token in argv:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subs and token in subs[0].choices:
            parser = subs[0].choices[token]
    options = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
    unknown = [t.split("=", 1)[0] for t in message.split(":", 1)[-1].split() if t.startswith("--")]
    hints = [(u, close[0]) for u in unknown for close in [difflib.get_close_matches(u, options, n=1, cutoff=0.75)]
             if close]
    if len(hints) == 1:
        message += f" (did you mean {hints[0][1]}?)"
    elif hints:
        message += f" (did you mean {', '.join(f'{c} for {u}' for u, c in hints)}?)"
    return parser, message


def _usage_error(exc: UsageError, argv: list[str]) -> int:
    command = _command_of(argv)
    message = exc.message
    if message.startswith("unrecognized arguments"):  # the command's own usage, and the option meant
        exc.parser, message = _unrecognized(exc.parser, argv, message)
    if command == "user" and message.startswith("unrecognized arguments"):
        message = ("unrecognized arguments (not shown: one may be a password; a password is read from standard "
                   "input with --password-stdin, never from the command line)")
    exc.parser.print_usage(sys.stderr)
    print(f"{exc.parser.prog}: error: {message}", file=sys.stderr, flush=True)
    if command in BOOK_COMMANDS and "--json" in argv:
        print(json.dumps({"error": message, "kind": "UsageError", "exit": 2}), flush=True)
    return 2
