"""`fedchem`: one command line with git/kubectl-style subcommands.

Each subcommand lives in its own module `fedchem.orchestrator.cli.<name>` exposing `register(subparsers)`, which
adds its parser and sets `func` (a callable taking the parsed args and returning an exit code). Heavy imports
(torch, substra, rdkit) happen inside the handlers so that `fedchem --help` stays instant.
User mistakes raise FedchemError and become a clean message and exit code 2, never a traceback; operating-system
errors a user can fix (permissions, a full disk, a file where a folder should be, a file that is not UTF-8) are
turned into the same kind of message here, in one place (`fedchem.opener.errors.os_errors`). A stopped, resumable
run exits 3. Every `--help` ends with these exit codes.
Every parser shares -v/--verbose and -q/--quiet (the level of the `fedchem` loggers, printed on stdout) and the
80-column help formatter of `helpformat`; the version comes from the installed package's metadata.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import textwrap
from importlib.metadata import PackageNotFoundError, version

from fedchem.opener.errors import EXIT_CODES_HELP, FedchemError, interrupted_by, os_errors
from fedchem.orchestrator.cli.helpformat import Formatter

# The order here is the order in `fedchem --help`.
COMMAND_MODULES = [
    "data",
    "prepare",
    "train_local",
    "run",
    "pull",
    "report",
    "predict",
    "export",
    "node",
    "demo",
]

DESCRIPTION = """\
fedchem trains one multi-task bioactivity model across pharmaceutical partners on Substra: a shared trunk learned
with secure aggregation, a private head per partner, and a report telling each partner whether joining helped.

typical flow (build partner folders from public data; featurise one partner's data, on its own node; the
baseline: that partner alone; federated training as Substra compute plans; did joining help, and where?):
  fedchem data moleculeace --partners 3 --out raw/
  fedchem prepare --consortium raw/consortium.yaml --partner raw/partner-1/partner.yaml
  fedchem train-local raw/prepared/partner-1
  fedchem run raw/consortium.yaml
  fedchem report RUN_DIR --partner partner-1
"""

EPILOG = EXIT_CODES_HELP


def package_version() -> str:
    """The installed distribution's version (pyproject.toml is the one place it is written)."""
    try:
        return version("fedchem")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _parsers(parser: argparse.ArgumentParser):
    """The parser and every sub-parser below it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _parsers(sub)


def _shared_options(parser: argparse.ArgumentParser) -> None:
    """-v / -q on every parser (absent unless given, so a sub-command's default never hides the top level's)."""
    parser.formatter_class = Formatter
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="more detail (debug messages)")
    group.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="only warnings and errors (no progress)")


def configure_logging(verbose: bool, quiet: bool) -> None:
    """The `fedchem` loggers print their messages on stdout at INFO (DEBUG with -v, WARNING with -q)."""
    logger = logging.getLogger("fedchem")
    for handler in [h for h in logger.handlers if getattr(h, "fedchem_cli", False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout)
    handler.fedchem_cli = True
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedchem", description=DESCRIPTION, epilog=EPILOG, formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=f"fedchem {package_version()}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = f"fedchem.orchestrator.cli.{name}"
        try:
            importlib.import_module(module).register(sub)
        except ModuleNotFoundError as exc:  # a command still being written; tests/test_cli.py requires them all
            if exc.name != module:
                raise
    _add_exit_codes(parser)
    for p in _parsers(parser):
        _shared_options(p)
    return parser


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of a parser's subcommands (one level)."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out += list(dict.fromkeys(action.choices.values()))  # aliases map to the same parser
    return out


def _add_exit_codes(parser: argparse.ArgumentParser) -> None:
    """Every command's --help ends with the exit codes (0 done, 2 user error, 3 stopped and resumable)."""
    for p in _subparsers(parser):
        if EPILOG not in (p.epilog or ""):
            p.epilog = f"{p.epilog.rstrip()}\n\n{EPILOG}" if p.epilog else EPILOG
            if p.formatter_class is argparse.HelpFormatter:  # keep the exit-code table's lines
                p.formatter_class = argparse.RawDescriptionHelpFormatter
                p.description = textwrap.fill(p.description, 100) if p.description else p.description
        _add_exit_codes(p)


def main(argv: list[str] | None = None) -> int:
    # Substra's local backend draws a tqdm bar per batch of tasks; ours are per round and per partner. tqdm reads
    # this when it is first imported, so it is set before anything imports substra.
    os.environ.setdefault("TQDM_DISABLE", "1")
    # what fedchem writes is a partner's private data or a run's records: owner-only, whatever the caller's umask
    # (opener/fileio.py; writers also set modes explicitly)
    os.umask(os.umask(0o077) | 0o077)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose, args.quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    configure_logging(args.verbose, args.quiet)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    try:
        with os_errors():
            return int(args.func(args) or 0)
    except (KeyboardInterrupt, Exception) as exc:
        if interrupted_by(exc) is not None:  # Ctrl-C, also when it broke a library's cleanup into another error
            print("interrupted: nothing half-written was kept; re-run (or `fedchem run --resume`) to continue",
                  file=sys.stderr)
            return 130
        if isinstance(exc, FedchemError):
            print(exc.message(), file=sys.stderr)
            return exc.exit_code
        raise


# commands whose process ends right after their files are written and closed: their interpreter teardown (module
# cleanup of torch and numba, freeing the model's arrays) is skipped, ~0.5 s after train-local on Tox21 (measured)
FAST_EXIT = {"train-local", "predict"}


def entry() -> None:
    """The `fedchem` console script: `main`, then exit; after a successful FAST_EXIT command without Python's
    teardown (nothing of it is left to do: every output was written atomically and closed, stdout is flushed)."""
    argv = sys.argv[1:]
    rc = main(argv)
    if rc == 0 and argv[:1] and argv[0] in FAST_EXIT and "torch" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    sys.exit(rc)


if __name__ == "__main__":
    entry()
