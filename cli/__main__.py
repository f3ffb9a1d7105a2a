"""`python -m cli` runs the `parktrace` command line."""

from cli.main import main

main()
