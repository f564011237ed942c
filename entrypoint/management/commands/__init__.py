"""One module per management command; each only maps its options onto the steps' functions."""
