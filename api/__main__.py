"""`python -m api` runs the `parktrace` command line."""

from .cli import main

main()
