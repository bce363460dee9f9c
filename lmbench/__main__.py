"""``python -m lmbench``."""

from .cli import main

main()
