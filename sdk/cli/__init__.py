"""The ``ofer`` command line: one module per subcommand, shared argument groups in :mod:`sdk.cli.args`."""
