"""regpipe score service: batch predictions for a whole dataset."""
