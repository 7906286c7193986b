"""The `prover` command's subcommands, one module per group; `prover/cli.py` wires them.

They sit above every other package (they may import the API, the run driver and Ray), each a thin
layer of argparse over library functions.
"""
