"""Command-line interface: one small module per command group."""
