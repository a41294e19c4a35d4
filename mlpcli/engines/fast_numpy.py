"""The fast NumPy engine: plain SGD (theta -= learning_rate * gradient) with the update fused
into backpropagation, on mini-batches that skip their blank margins, and per sample.

Both step functions take X (n, d) float32 rows in the order to train on and labels y (n,),
update the model in place, and return the logits (n, k) each sample had when it was trained
on, so the caller measures loss and accuracy in one vectorized pass instead of once per step.
Their tricks (the learning rate folded into the output gradient, the blank tail's shared step,
the per-sample block's deferred first-layer update) hold because plain SGD's update is linear
in the gradient: any other optimizer, weight decay, max-norm or dropout goes to another engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np

from ..data import Split, normalize
from ..nn.activations import Activation
from ..nn.losses import LOSSES
from ..nn.model import MLP
from .base import Engine, StepOptions, Trained, blas_threads, measured
from .blas import subtract_transposed_product
from .ink import batch_ends, in_ink_order, ink_order


def forward(
    weights: list[np.ndarray], biases: list[np.ndarray], activation: Activation, X: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """nn.model.forward on bare arrays: the pre-activations [Z_1..Z_L] and activations
    [A_0..A_{L-1}], for weights that may be cut to a batch's inked columns."""
    Zs, As = [], [X]
    for layer, (W, b) in enumerate(zip(weights, biases, strict=True)):
        Z = As[-1] @ W
        Z += b
        Zs.append(Z)
        if layer < len(weights) - 1:
            As.append(activation.forward(Z))
    return Zs, As


def backpropagate(
    weights: list[np.ndarray],
    activation: Activation,
    Zs: list[np.ndarray],
    As: list[np.ndarray],
    dZ: np.ndarray,
    take: Callable[[int, np.ndarray, np.ndarray], None],
) -> None:
    """nn.model.backward with each layer's gradient handed to take(l, A_{l-1}, dZ_l) as soon
    as it is known, rather than returned: take() may update W_l in place (SGD does), since
    the gradient for the layer below is computed from W_l first."""
    for layer in range(len(weights) - 1, -1, -1):
        below = dZ @ weights[layer].T if layer else None  # before take() may change W_l
        take(layer, As[layer], dZ)
        if layer:
            below *= activation.derivative(Zs[layer - 1], As[layer])
            dZ = below


@dataclass(frozen=True)
class BlankTail:
    """Inputs that stop varying: in batch i, every column from ends[i] on holds `value` in
    every row (ink.py orders MNIST's pixels so that each batch's blank margin is such a tail).

    Then the first layer needs its products only over the columns before e = ends[i]:
        Z = X[:, :e] W[:e] + (b + value * colsum(W[e:]))
        W[:e] -= X[:, :e]^T dZ,  W[e:] -= value * db  (every tail row takes the same step)
    which is exactly the step on the whole of X.
    """

    ends: np.ndarray  # (number of batches,) int
    value: float


def sgd_minibatches(
    model: MLP,
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    learning_rate: float,
    blank: BlankTail | None = None,
) -> np.ndarray:
    """One SGD step for each consecutive batch of `batch_size` rows.

    Each layer is updated as soon as backpropagation has passed it: dW never exists as an
    array, since BLAS subtracts A^T dZ from W in the product itself (blas.py). With `blank`,
    the first layer skips each batch's blank tail of columns (BlankTail).
    """
    weights, biases, activation = model.weights, model.biases, model.get_activation()
    # column order, in which the loss and gradient reduce rows fast (losses.by_columns)
    logits = np.empty((len(y), model.layers[-1]), weights[-1].dtype, order="F")
    output_gradient = _scaled_output_gradient(model.loss, y, logits, batch_size, learning_rate)
    first_W = weights[0]
    if blank is not None:
        tail_values = np.full(len(first_W), blank.value, first_W.dtype)
    step_weights, step_biases, end = weights, biases, len(first_W)
    ones = np.ones(batch_size, first_W.dtype)  # db as 1^T dZ: BLAS's gemv beats sum(axis=0)

    def update(layer: int, A: np.ndarray, dZ: np.ndarray) -> None:
        db = ones[: len(dZ)] @ dZ
        biases[layer] -= db
        subtract_transposed_product(step_weights[layer], A, dZ)
        if layer == 0 and end < len(first_W):
            db *= tail_values[0]
            first_W[end:] -= db

    for number, start in enumerate(range(0, len(y), batch_size)):
        batch = slice(start, start + batch_size)
        if blank is not None:
            end = blank.ends[number]
            step_weights, step_biases = _tail_folded(weights, biases, tail_values, end)
        Zs, As = forward(step_weights, step_biases, activation, X[batch, :end])
        logits[batch] = Zs[-1]
        backpropagate(step_weights, activation, Zs, As, output_gradient(Zs[-1], batch), update)
    return logits


def _tail_folded(
    weights: list[np.ndarray], biases: list[np.ndarray], tail_values: np.ndarray, end: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The layers for a batch whose inputs from column `end` on hold tail_values[end:]: the
    first layer's W cut to its first `end` rows (a view), the tail's input folded into b."""
    first_bias = tail_values[end:] @ weights[0][end:]
    first_bias += biases[0]
    return [weights[0][:end], *weights[1:]], [first_bias, *biases[1:]]


def _scaled_targets(
    y: np.ndarray, logits: np.ndarray, batch_size: int, learning_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's step / n (n being the size of the batch the row falls in: the last may be
    short), and the one-hot targets (n, k) scaled by it, in the dtype of `logits`."""
    rows = np.arange(len(y))
    sizes = np.minimum(batch_size, len(y) - rows // batch_size * batch_size)
    scale = (learning_rate / sizes).astype(logits.dtype)
    targets = np.zeros_like(logits)  # laid out as logits, for the gradient's last step
    targets[rows, y] = scale
    return scale, targets


def _scaled_output_gradient(
    loss_name: str, y: np.ndarray, logits: np.ndarray, batch_size: int, learning_rate: float
) -> Callable[[np.ndarray, slice], np.ndarray]:
    """(Z of the rows `batch`, batch) -> learning_rate * dL/dZ, in the dtype and width of
    `logits`; scaling the small output gradient by the step scales every dW and db with it.

    Cross-entropy, the common case, is fused: (softmax(Z) - Y) * step / n with the scaled
    one-hot targets made once for all rows, rather than a fancy-indexed subtraction per batch.
    """
    step = logits.dtype.type(learning_rate)
    if loss_name != "cross-entropy":
        gradient = LOSSES[loss_name].gradient
        return lambda Z, batch: np.multiply(gradient(Z, y[batch]), step, dtype=Z.dtype)
    scale, targets = _scaled_targets(y, logits, batch_size, learning_rate)

    def cross_entropy(Z: np.ndarray, batch: slice) -> np.ndarray:
        E = np.array(Z, order="F")  # a copy whose row reductions are fast (losses.by_columns)
        E -= E.max(axis=1, keepdims=True)  # stable softmax, as losses.softmax
        np.exp(E, out=E)
        E *= scale[batch, None] / E.sum(axis=1, keepdims=True)
        E -= targets[batch]
        return E

    return cross_entropy


def _scaled_sample_gradient(
    loss_name: str, y: np.ndarray, logits: np.ndarray, learning_rate: float
) -> Callable[[np.ndarray, int], np.ndarray]:
    """(logits z (k,) of sample i, i) -> learning_rate * dL/dz: _scaled_output_gradient for
    batch size 1, on 1-D vectors, whose reductions numpy does faster than a (1, k) row's."""
    if loss_name != "cross-entropy":
        rows = _scaled_output_gradient(loss_name, y, logits, 1, learning_rate)
        return lambda z, i: rows(z[None], slice(i, i + 1))[0]
    step = logits.dtype.type(learning_rate)
    _, targets = _scaled_targets(y, logits, 1, learning_rate)

    def cross_entropy(z: np.ndarray, i: int) -> np.ndarray:
        e = z - z.max()
        np.exp(e, out=e)
        e *= step / e.sum()
        e -= targets[i]
        return e

    return cross_entropy


def sgd_per_sample(
    model: MLP, X: np.ndarray, y: np.ndarray, learning_rate: float, block: int = 32
) -> np.ndarray:
    """Per-sample SGD (batch size 1), exact, with the first layer's updates applied per block.

    Per sample, updating the first layer W (d, h) costs a (d, h) outer product, far more than
    the rest of the step. Its input x does not depend on the weights, so within a block the
    update can wait: after samples s < t of the block changed W by -x_s dz_s^T and b by -dz_s
    (dz_s being step * dL/dz for sample s), sample t's pre-activation is exactly
        z_t = x_t W + b - sum_{s<t} (x_t . x_s + 1) dz_s
    with W, b as at the block's start. That costs the block's Gram matrix X_B X_B^T once and a
    (t, h) product per sample; the block's updates are applied at its end as one matmul. The
    layers above are updated sample by sample on 1-D vectors.
    """
    activation, weights, biases = model.get_activation(), model.weights, model.biases
    logits = np.empty((len(y), model.layers[-1]), weights[-1].dtype)
    output_gradient = _scaled_sample_gradient(model.loss, y, logits, learning_rate)
    first_dZ = np.empty((block, model.layers[1]), weights[0].dtype)
    upper_layers = list(zip(weights[1:], biases[1:], strict=True))  # updated in place

    def update_upper(layer: int, a: np.ndarray, dz: np.ndarray) -> None:
        """Layers above the first step at once; the first layer's dz waits for the block."""
        if layer:
            weights[layer] -= np.outer(a, dz)
            biases[layer] -= dz
        else:
            first_dZ[t] = dz

    for start in range(0, len(y), block):
        X_block = X[start : start + block]
        first_Z = X_block @ weights[0] + biases[0]
        overlap = X_block @ X_block.T + 1  # x_t . x_s, plus 1 for the bias's constant input
        for t, x in enumerate(X_block):
            z = first_Z[t]
            if t:
                z -= overlap[t, :t] @ first_dZ[:t]
            Zs, As = [z], [x]
            for W, b in upper_layers:  # forward(), leaner on 1-D vectors
                As.append(activation.forward(Zs[-1]))
                Zs.append(As[-1] @ W + b)
            sample = start + t
            logits[sample] = Zs[-1]
            dz = output_gradient(Zs[-1], sample)
            backpropagate(weights, activation, Zs, As, dz, update_upper)
        done = first_dZ[: len(X_block)]
        subtract_transposed_product(weights[0], X_block, done)
        biases[0] -= done.sum(axis=0)
    return logits


@dataclass
class InkOrder:
    """Mini-batches that skip their blank margins (ink.py): `order` (d,) lists the training
    pixels' columns most-inked first, and `blank_value` is what a blank pixel normalizes to."""

    train: Split
    order: np.ndarray
    blank_value: float

    @classmethod
    def of(cls, train: Split) -> InkOrder | None:
        """None when `train` holds float features, whose blank value is unknown, or rows of
        odd width, which ink.py cannot take in pairs."""
        if train.normalization is None or train.X.shape[1] % 2:
            return None
        blank = normalize(np.zeros((1, 1), train.X.dtype), *train.normalization)[0, 0]
        return cls(train, ink_order(train.X), float(blank))

    def features(self, rows: np.ndarray, batch_size: int) -> tuple[np.ndarray, BlankTail]:
        """The network's input for `rows`, its columns in ink order, and where the ink of
        each batch of `batch_size` of them ends."""
        pixels = in_ink_order(self.train.X[rows], self.order)
        blank = BlankTail(batch_ends(pixels, batch_size), self.blank_value)
        return normalize(pixels, *self.train.normalization), blank

    @contextmanager
    def first_layer_reordered(self, model: MLP) -> Iterator[None]:
        """The first layer's weight rows in ink order for the duration, then back in pixel
        order, however the epoch ends: nothing outside it sees the ink order."""
        W = model.weights[0]
        W[:] = W[self.order]
        try:
            yield
        finally:
            W[self.order] = W.copy()


class FastNumpyEngine(Engine):
    """sgd_minibatches (sgd_per_sample at batch size 1) a chunk at a time; mini-batches skip
    their blank margins when the split holds pixels."""

    name = "numpy"

    def prepare(self, train: Split) -> None:
        self.inked = InkOrder.of(train) if self.batch_size > 1 else None

    @staticmethod
    def why_not(step: StepOptions, train: Split | None = None) -> str | None:
        extras = step.beyond_plain_sgd()
        if extras:
            return f"its fused steps are plain SGD's, without {extras}"
        return None

    def _features(self, rows: np.ndarray) -> tuple[np.ndarray, BlankTail | None]:
        if self.inked:
            return self.inked.features(rows, self.batch_size)
        return self.train.features(rows), None

    def _prepared_chunks(self, order: np.ndarray, prefetch: bool):
        """(rows, features) for each chunk in turn. With `prefetch`, the next chunk is
        normalized in a background thread while this one trains: numpy releases the GIL for
        that work, so it runs on the core that one-thread BLAS leaves idle (when BLAS runs
        on both cores, that thread would only slow it)."""
        if not prefetch:
            for rows in self.chunks(order):
                yield rows, self._features(rows)
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            chunks = list(self.chunks(order))
            pending = pool.submit(self._features, chunks[0]) if chunks else None
            for number, rows in enumerate(chunks):
                ready = pending.result()
                if number + 1 < len(chunks):
                    pending = pool.submit(self._features, chunks[number + 1])
                yield rows, ready

    def run_epoch(self, order: np.ndarray) -> Iterator[Trained]:
        from threadpoolctl import threadpool_limits

        self.ready()
        threads = blas_threads(self.model.layers, self.batch_size, self.threads)
        learning_rate = self.optimizer.learning_rate
        with (
            threadpool_limits(threads, user_api="blas"),
            self.inked.first_layer_reordered(self.model) if self.inked else nullcontext(),
        ):
            for rows, (X, blank) in self._prepared_chunks(order, prefetch=threads == 1):
                y = self.train.y[rows]
                if self.batch_size == 1:
                    logits = sgd_per_sample(self.model, X, y, learning_rate)
                else:
                    logits = sgd_minibatches(
                        self.model, X, y, self.batch_size, learning_rate, blank
                    )
                self.optimizer.steps += -(-len(y) // self.batch_size)
                yield measured(self.model, logits, y)
