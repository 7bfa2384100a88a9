"""regpipe predict service."""
