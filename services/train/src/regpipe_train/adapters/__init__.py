"""Private library internals train relies on, one module per library (``docs/contracts.md``)."""
