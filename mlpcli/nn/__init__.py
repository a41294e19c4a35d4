"""The readable math, which every engine must reproduce: the model's forward and backward
passes (model.py), activations, losses, initializers, dropout, optimizers and schedules.
Nothing here imports from mlpcli.engines (tests/test_layout.py keeps it so)."""
