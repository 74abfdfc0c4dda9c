"""``python -m engine.cli``: the ``yujing`` command line."""

from engine.cli import main

main()
