"""The `parktrace` command line: thin commands over the SDK, the node and the devtools."""
