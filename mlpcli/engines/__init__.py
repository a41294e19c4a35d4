"""Engines: ways to take the reference's training steps, behind one interface (base.py).

- compiled (compiled.py, _sparse_sgd.c): C that multiplies the first layer by the ink alone.
- numpy (fast_numpy.py): plain SGD fused into backpropagation, skipping blank margins.
- reference (reference.py): nn.model.train_step itself; takes every option.

choice.py picks one. This file imports none of them, so that `mlp predict` need not load
them to offer the names.
"""

ENGINE_CHOICES = ("auto", "compiled", "numpy", "reference")  # fastest first
