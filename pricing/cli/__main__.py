"""``python -m pricing.cli``: the same as the ``esl-pricing`` console script."""

from pricing.cli.app import main

main()
