"""Cross-package tests: several Lingua packages together, in one process or as real processes."""
