"""The esl-pricing command line, one module per command group (``app`` assembles them).

In: command-line arguments and files. Out: the stages' results as Rich tables on stderr, one JSON
line on stdout with ``--json``, and exit codes 0 ok, 1 failure, 2 user error (one line, no traceback).
"""
