"""What a finished run shows: figures and the printed summary, written from the tables."""
