"""regpipe train service."""
