"""The drawing page and its local server (`mlp serve`)."""
