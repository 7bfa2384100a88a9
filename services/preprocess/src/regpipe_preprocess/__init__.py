"""regpipe preprocess service."""
