"""The `fedchem` command line: argument parsing and printing only, one module per subcommand.

`main` builds the parser from each module's `register(subparsers)` and turns a FedchemError into a clean message
and exit code. Handlers call library functions elsewhere in the orchestrator; nothing outside `cli/` imports it.
"""
