"""One module per `cip` subcommand; each also offers its stage to `cip run`."""
