"""The shipped model directory (weights/default) and its recipe; data only."""
