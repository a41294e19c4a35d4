"""Distortions of training images, new every epoch: random affine maps and elastic fields.

A plain MLP learns MNIST's digits from 50,000 images; shown each one bent a little
differently every epoch, it generalizes as if it had seen many more (Simard et al. 2003).

Each output pixel p (x to the right, y down, from the image centre c) is sampled from the
source image at
    q = M^-1 (p - c - t) + c + d(p)
where M = rotation @ shear @ scale and t (pixels) is the affine part, and d is the elastic
displacement field: uniform noise in [-1, 1] per pixel and axis, smoothed by a Gaussian of
width sigma and scaled by alpha (Simard's recipe). That field is drawn over the modes the
blur does not erase rather than pixel by pixel, with the same covariance as Simard's
(Warper.elastic_field): a hundred random numbers an image instead of 1,568.
Sampling is bilinear; beyond the image the paper is blank (0). A positive rotation turns
the digit counterclockwise as displayed.

Shapes: images (n, h, w) uint8 in, the same out, so the compiled step still reads ink.

The same seed and epoch give the same images whatever the machine's load: no product here
is one that BLAS would split over threads (some of its kernels round differently when they
do, and a pixel on a rounding edge then turns out one level apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .splits import Split

AUGMENTATIONS = ("affine", "elastic")
CHUNK_IMAGES = 256  # images distorted at a time: their float arrays stay in the CPU's cache
STREAM = 3  # the run's fourth random stream: init, shuffle and dropout are 0, 1 and 2


def parse_kinds(value: str | list) -> tuple[str, ...]:
    """'affine,elastic' (or a list of them; "" or "none": none) -> the kinds in
    AUGMENTATIONS' order; ValueError naming the first unknown one."""
    parts = value if isinstance(value, list) else str(value).split(",")
    kinds = [str(p).strip() for p in parts if str(p).strip() not in ("", "none")]
    unknown = [k for k in kinds if k not in AUGMENTATIONS]
    if unknown:
        raise ValueError(
            f"{unknown[0]!r} is not a distortion; give a comma-separated list of "
            f"{', '.join(AUGMENTATIONS)}, or none (e.g. --augment affine,elastic)"
        )
    return tuple(k for k in AUGMENTATIONS if k in kinds)


@dataclass(frozen=True)
class Augmentation:
    """Which distortions to make and how strong; each draw is uniform in its range."""

    kinds: tuple[str, ...] = ()  # a subset of AUGMENTATIONS; () makes none
    rotation: float = 10.0  # degrees, in [-rotation, rotation]
    scale: float = 0.1  # factor in [1 - scale, 1 + scale], the same for x and y
    shear: float = 10.0  # degrees of horizontal shear, in [-shear, shear]
    translate: float = 2.0  # pixels in x and in y, each in [-translate, translate]
    alpha: float = 34.0  # elastic: the smoothed field's scale, in pixels
    sigma: float = 4.0  # elastic: the Gaussian's width, in pixels

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def distort(
        self, images: np.ndarray, rng: np.random.Generator, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Images (n, h, w) uint8 -> each distorted by its own random draw, (n, h, w) uint8,
        into `out` when given (a fresh array's page faults cost more than one might think)."""
        out = np.empty_like(images) if out is None else out
        warper = Warper(min(len(images), CHUNK_IMAGES), *images.shape[1:])
        for start in range(0, len(images), CHUNK_IMAGES):
            chunk = images[start : start + CHUNK_IMAGES]
            inverse, shift = self.draw_affine(len(chunk), rng)
            field = None
            if "elastic" in self.kinds:
                field = warper.elastic_field(len(chunk), rng, self.alpha, self.sigma)
            warper.warp(chunk, inverse, shift, field, out[start : start + len(chunk)])
        return out

    def draw_affine(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n random maps as (inverse (n, 2, 2), shift t (n, 2)) for warp(); identities
        when "affine" is not among the kinds."""
        if "affine" not in self.kinds:
            return np.broadcast_to(np.eye(2), (n, 2, 2)), np.zeros((n, 2))
        angle, shear, scale, tx, ty = rng.uniform(-1, 1, (5, n)) * np.array(
            [[self.rotation], [self.shear], [self.scale], [self.translate], [self.translate]]
        )
        return affine_inverse(angle, 1 + scale, shear), np.stack([tx, ty], axis=1)


def affine_inverse(angle: np.ndarray, scale: np.ndarray, shear: np.ndarray) -> np.ndarray:
    """Inverses (n, 2, 2) of M = rotation(angle) @ shear(shear) @ scale(scale), angles in
    degrees, M acting on (x, y) with y down; a positive angle turns counterclockwise."""
    theta, phi = np.radians(angle), np.radians(shear)
    cos, sin, tan = np.cos(theta), np.sin(theta), np.tan(phi)
    one, zero = np.ones_like(theta), np.zeros_like(theta)
    rotation = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)
    shearing = np.stack([np.stack([one, tan], -1), np.stack([zero, one], -1)], -2)
    scaling = scale[:, None, None] * np.eye(2)
    return np.linalg.inv(rotation @ shearing @ scaling)


def gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """(size, size) float32 G with (G @ v)[i] = sum_j g(i - j) v[j]: a Gaussian blur of width
    sigma, its kernel normalized to sum 1 and cut at 4 sigma, zeros beyond the edges (as
    scipy.ndimage.gaussian_filter with mode="constant")."""
    radius = int(4 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    distance = np.arange(size)[:, None] - np.arange(size)[None, :]
    inside = np.abs(distance) <= radius
    return np.where(inside, kernel[np.clip(distance + radius, 0, 2 * radius)], 0).astype(np.float32)


GAUSSIAN_MODES_KEPT = 1e-3  # a blur's modes whose gain is below this share are left out


def blur_modes(size: int, sigma: float) -> np.ndarray:
    """(size, r) float32 Q g: the eigenvectors of gaussian_matrix(size, sigma) (symmetric)
    scaled by their eigenvalues g, for the r eigenvalues above GAUSSIAN_MODES_KEPT of the
    largest, so that (Q g)(Q g)^T is the blur's G G^T but for what it nearly erases."""
    gains, vectors = np.linalg.eigh(gaussian_matrix(size, sigma).astype(np.float64))
    kept = np.abs(gains) > GAUSSIAN_MODES_KEPT * np.abs(gains).max()
    return (vectors[:, kept] * gains[kept]).astype(np.float32)


def warp(
    images: np.ndarray,
    inverse: np.ndarray,
    shift: np.ndarray,
    field: np.ndarray | None = None,
) -> np.ndarray:
    """Images (n, h, w) uint8 sampled bilinearly at q = inverse (p - c - shift) + c + field(p)
    (module docstring): inverse (n, 2, 2), shift (n, 2) pixels, field (2, n, h, w) (x, then
    y, as Warper.elastic_field lays it out) or None."""
    out = np.empty_like(images)
    Warper(*images.shape).warp(images, inverse, shift, field, out)
    return out


def compiled_sampler():
    """The compiled step's module, whose sample_bilinear() takes the sampling below in one
    pass, or None (not built, or MLPCLI_SAMPLER=numpy, which tests compare it with)."""
    import os

    if os.environ.get("MLPCLI_SAMPLER", "").strip().lower() == "numpy":
        return None
    from ..engines import compiled  # here: the data package loads without the engines

    return compiled.step_module() if compiled.available() else None


class Warper:
    """warp() for up to `n` images of h x w at a time, in buffers made once: fresh arrays for
    each chunk cost more in page faults than the arithmetic does."""

    def __init__(self, n: int, h: int, w: int):
        self.shape = (n, h, w)
        self.centre = np.array([(w - 1) / 2, (h - 1) / 2])
        self.grid = np.stack(  # [x - cx, y - cy, 1] of each pixel, row after row
            [
                np.tile(np.arange(w) - self.centre[0], h),
                np.repeat(np.arange(h) - self.centre[1], w),
                np.ones(h * w),
            ]
        ).astype(np.float32)
        self.q = np.empty((2, n, h, w), np.float32)
        self.whole = np.empty((2, n, h, w), np.int32)
        # one blank pixel before the image and two after, in each axis (see warp)
        self.padded = np.zeros((n, h + 3, w + 3), np.uint8)
        self.packed = np.zeros((n, h + 3, w + 3, 4), np.uint8)
        self.neighbours = np.empty((n, h, w), np.uint32)
        self.corners = np.empty((4, n, h, w), np.float32)
        self.along_x = np.empty((2 * n, h, w), np.float32)  # elastic_field's first product
        self.field = np.empty((2 * n, h, w), np.float32)  # (2, m, h, w) for m images
        self.modes = (None, None, None)  # (sigma, blur_modes along y, along x)
        self.first_pixels = np.arange(n, dtype=np.int32)[:, None, None] * self.padded[0].size
        self.compiled = compiled_sampler()

    def elastic_field(
        self, m: int, rng: np.random.Generator, alpha: float, sigma: float
    ) -> np.ndarray:
        """Displacement fields of m images, x and y, laid out (2, m, h, w): alpha times
        Simard's G N G^T, N uniform noise in [-1, 1] per pixel, G the Gaussian blur
        (gaussian_matrix). Drawn through G = Q diag(g) Q^T as alpha (Q g) Z (Q g)^T, with Z
        uniform in [-1, 1] too: Q^T N Q has the same covariance, as Q is orthogonal, so the
        field's covariance is Simard's but for the modes the blur nearly erases (g below
        GAUSSIAN_MODES_KEPT of the largest), and an image takes a hundred numbers rather
        than 1568 (module docstring). The products are one small matrix an image and axis:
        never large enough for BLAS to split over threads (module docstring)."""
        n, h, w = self.shape
        if self.modes[0] != sigma:
            self.modes = (sigma, blur_modes(h, sigma), blur_modes(w, sigma))
        _, rows, cols = self.modes  # (h, r), (w, c)
        r, c = rows.shape[1], cols.shape[1]
        noise = rng.random((r, 2 * m, c), dtype=np.float32)
        noise -= np.float32(0.5)
        noise *= np.float32(2 * alpha)
        along_x = self.along_x[: 2 * m, :r]
        np.matmul(noise.transpose(1, 0, 2), cols.T, out=along_x)  # (2m, r, w)
        field = self.field[: 2 * m]
        np.matmul(rows, along_x, out=field)  # (2m, h, w)
        return field.reshape(2, m, h, w)

    def warp(self, images, inverse, shift, field, out) -> None:
        """warp() of images (m, h, w), m <= n, into out (m, h, w) uint8."""
        m, h, w = images.shape
        stride = w + 3
        # q + 1, in the padded image = coefficients (m, 3) @ grid (3, h w), for x and for y,
        # by einsum: a BLAS product this large may be split over threads (module docstring)
        offset = self.centre + 1 - (inverse @ shift[:, :, None])[:, :, 0]
        coefficients = np.empty((2, m, 3), np.float32)  # x's, then y's
        for axis in range(2):
            coefficients[axis] = np.concatenate([inverse[:, axis], offset[:, axis, None]], axis=1)
        if self.compiled is not None:  # the steps below fused in C, one pixel at a time
            self.compiled.sample_bilinear(images, coefficients, self.grid, field, m, h, w, out)
            return
        q, whole = self.q[:, :m], self.whole[:, :m]
        for axis in range(2):
            product = q[axis].reshape(m, -1)
            np.einsum("ij,jk->ik", coefficients[axis], self.grid, out=product)
            if field is not None:  # (2, m, h, w)
                q[axis] += field[axis]
        # clipping to [0, size + 1] sends all beyond the image to blank paper, with no test
        np.clip(q[0], 0, w + 1, out=q[0])
        np.clip(q[1], 0, h + 1, out=q[1])
        np.copyto(whole, q, casting="unsafe")  # the floor, as q >= 0
        np.subtract(q, whole, out=q, dtype=np.float32, casting="unsafe")  # the fractions
        index = whole[1]
        index *= stride
        index += whole[0]
        index += self.first_pixels[:m]
        # each pixel's neighbours (x, y), (x+1, y), (x, y+1), (x+1, y+1) packed in 4 bytes,
        # so that one gather fetches all four
        padded, packed = self.padded[:m], self.packed[:m]
        padded[:, 1 : h + 1, 1 : w + 1] = images
        for k, (down, right) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            packed[:, :-1, :-1, k] = padded[:, down : down + h + 2, right : right + w + 2]
        neighbours = self.neighbours[:m]
        np.take(packed.view(np.uint32).reshape(-1), index, out=neighbours, mode="clip")
        # each corner in a plane of its own: the arithmetic below then runs on contiguous
        # arrays, twice as fast as on every fourth float
        corners = self.corners[:, :m]
        for k, corner in enumerate(corners):
            np.copyto(corner, neighbours.view(np.uint8).reshape(m, h, w, 4)[..., k])
        top, right, bottom, bottom_right = corners
        fraction_x, fraction_y = q
        right -= top
        right *= fraction_x
        top += right  # along the top edge
        bottom_right -= bottom
        bottom_right *= fraction_x
        bottom += bottom_right  # along the bottom edge
        bottom -= top
        bottom *= fraction_y
        top += bottom  # between the edges
        top += np.float32(0.5)  # round to nearest: bilinear values stay within 0..255
        np.copyto(out, top, casting="unsafe")


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The distortions' Generator for `epoch` of a run seeded `seed`: drawn from the seed and
    the epoch alone, so an epoch can be made ahead in the background, and a resumed run
    continues the same stream with nothing saved."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM, epoch)))


class AugmentedEpochs:
    """A training split distorted anew for each epoch. With `background` on, ahead(e)
    starts epoch e + 1's images in a thread of their own while epoch e trains (NumPy
    releases the GIL in its loops).

    With two `buffers` they take turns: epoch e's images are written while epoch e - 1
    trains on the other, so a split that epoch() returned stays as it is until the epoch
    after next. With one, ahead(e) writes over epoch e's images: for a trainer that has
    copied what it needs of them (the compiled step's index of the ink)."""

    def __init__(
        self,
        train: Split,
        augmentation: Augmentation,
        seed: int,
        last_epoch: int,
        buffers: int = 2,
    ):
        if train.image_shape is None or train.X.dtype != np.uint8:
            raise ValueError("augmentation needs uint8 images with their shape")
        self.train, self.augmentation = train, augmentation
        self.seed, self.last_epoch = seed, last_epoch
        self.images = train.X.reshape(len(train.X), *train.image_shape)
        self.buffers = [np.empty_like(self.images) for _ in range(buffers)]
        self.background = False
        self.pool = None
        self.pending = {}  # epoch -> the Future of its images

    def _make(self, epoch: int) -> np.ndarray:
        out = self.buffers[epoch % len(self.buffers)]
        self.augmentation.distort(self.images, epoch_rng(self.seed, epoch), out)
        return out

    def epoch(self, epoch: int) -> Split:
        """The split of `epoch`, its labels and normalization those of the training split;
        with two buffers and `background` on, the next epoch's images are begun (ahead)."""
        pending = self.pending.pop(epoch, None)
        images = pending.result() if pending is not None else self._make(epoch)
        if len(self.buffers) > 1:
            self.ahead(epoch)
        return Split(
            images.reshape(len(images), -1),
            self.train.y,
            self.train.normalization,
            self.train.image_shape,
        )

    def ahead(self, epoch: int) -> None:
        """With `background` on, begin epoch + 1's images in the background thread."""
        if self.background and epoch < self.last_epoch and epoch + 1 not in self.pending:
            if self.pool is None:
                from concurrent.futures import ThreadPoolExecutor  # here: predict skips it

                self.pool = ThreadPoolExecutor(1, thread_name_prefix="mlpcli-augment")
            self.pending[epoch + 1] = self.pool.submit(self._make, epoch + 1)

    def close(self) -> None:
        """Stop making epochs (one being made runs to its end in the background)."""
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
