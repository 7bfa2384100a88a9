"""The only modules that rely on what a library does not promise (private attributes, internal
names): one per library, each with a test that fails loudly when an upgrade changes it
(``tests/test_adapters.py``) and an upper version pin in ``pyproject.toml``."""
