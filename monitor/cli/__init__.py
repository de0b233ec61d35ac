"""The command line, at the top of the layers."""
