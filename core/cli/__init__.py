"""Command line: `python -m core <command>`. Each command prints one JSON object with --json.

Every option's value is checked on entry (`options`); an expected problem goes to stderr as
`error: ...` with exit status 2, never a traceback, and with --json also to stdout as one
`{"error": {"kind": ..., "message": ...}}` object. Modules: `options` (the parser, value types),
`output` (what is written where), `commands` and `serving` (the commands), `run` (`main`).
"""
from core.cli.run import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
