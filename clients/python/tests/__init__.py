"""Unit tests of the Herald Python client (run: python3 -m unittest discover -s tests -t .)."""
