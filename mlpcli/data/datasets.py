"""The datasets mlpcli trains on: MNIST, Fashion-MNIST, and any folder of IDX files.

Every dataset is four IDX files of unsigned bytes: training and test images (n, h, w) and
their labels (n,), 0..K-1. A named dataset has public mirrors and the SHA-256 of each file
decompressed, and is cached in a folder of its own under the data dir; a folder of IDX files
is read where it is (gzipped or not), checked for consistency, and never cached.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import mnist
from .fetch import (
    decompress,
    default_data_dir,
    download,
    expanded,
    read_cached,
)

FILE_NAMES = {  # the four files' names, as MNIST and its successors use them
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "test-images": "t10k-images-idx3-ubyte",
    "test-labels": "t10k-labels-idx1-ubyte",
}
MAX_FOLDER_IDX_BYTES = 1 << 30  # a folder's file, decompressed: EMNIST's largest is 0.6 GB
CLASSES_FILE = "classes.txt"

FASHION_MNIST_FILES = {  # SHA-256 of each file after decompression
    "train-images": (
        FILE_NAMES["train-images"],
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train-labels": (
        FILE_NAMES["train-labels"],
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "test-images": (
        FILE_NAMES["test-images"],
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "test-labels": (
        FILE_NAMES["test-labels"],
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}
FASHION_MNIST_MIRRORS = (  # Zalando's own, tried in order
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class Dataset:
    name: str  # "mnist", "fashion-mnist", or a folder's absolute path
    files: dict[str, tuple[str, str | None]]  # key -> (file name, SHA-256 decompressed)
    mirrors: tuple[str, ...] = ()
    class_names: tuple[str, ...] | None = None  # None: "0", "1", ... as many as labels
    folder: Path | None = None  # where a folder dataset's files are
    preparation: str = "objects"  # one of io.image.PREPARATIONS
    image_shape: tuple[int, int] | None = None  # (h, w) when known before reading the files
    sha256: dict[str, str] = field(default_factory=dict)  # a folder's files, once read

    @property
    def mirror_env(self) -> str:
        """MLP_<NAME>_MIRROR: base URLs, separated by spaces, that replace the mirrors."""
        return f"MLP_{self.name.upper().replace('-', '_')}_MIRROR"

    def default_mirrors(self) -> list[str]:
        return os.environ.get(self.mirror_env, "").split() or list(self.mirrors)

    def names(self, classes: int) -> list[str]:
        """The names of `classes` classes: class_names, or the labels as text."""
        names = list(self.class_names or [])
        return names + [str(k) for k in range(len(names), classes)]


def named_datasets() -> dict[str, Dataset]:
    """The datasets that have a name, each as it is now (tests may patch MNIST's files)."""
    return {
        "mnist": Dataset(
            "mnist",
            dict(mnist.MNIST_FILES),
            tuple(mnist.DEFAULT_MIRRORS),
            tuple(str(k) for k in range(10)),
            preparation="digits",
            image_shape=(28, 28),
        ),
        "fashion-mnist": Dataset(
            "fashion-mnist",
            FASHION_MNIST_FILES,
            FASHION_MNIST_MIRRORS,
            FASHION_MNIST_CLASSES,
            image_shape=(28, 28),
        ),
    }


def resolve(spec: str) -> Dataset:
    """A dataset's name, or a folder of IDX files -> its Dataset; DataError when neither."""
    named = named_datasets()
    if spec in named:
        return named[spec]
    folder = expanded(spec)
    if not folder.is_dir():
        raise DataError(
            f"unknown dataset {spec!r}: give {' or '.join(named)}, or a folder holding the four "
            f"IDX files ({', '.join(FILE_NAMES.values())}, gzipped or not)"
        )
    names = None
    if (folder / CLASSES_FILE).is_file():
        names = _class_names(folder / CLASSES_FILE)
    return Dataset(
        str(folder.resolve()),
        {key: (name, None) for key, name in FILE_NAMES.items()},
        class_names=names,
        folder=folder.resolve(),
    )


CLASSES_FILE_LIMIT = 1 << 20  # bytes of classes.txt read: far more than MAX_CLASSES names
MAX_CLASSES = 1000  # a network's outputs: more names than this are a mistaken file


def _class_names(path: Path) -> tuple[str, ...]:
    """The names in classes.txt, one a line, checked against what a checkpoint can hold, so
    that a run is refused before any work rather than saved where no command can read it."""
    from ..io.run_meta import MAX_NAME_LENGTH

    try:
        with open(path, "rb") as file:
            raw = file.read(CLASSES_FILE_LIMIT + 1)
        if len(raw) > CLASSES_FILE_LIMIT:  # cut at the last whole line within the limit
            raw = raw[: raw.rfind(b"\n", 0, CLASSES_FILE_LIMIT) + 1]
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} as UTF-8 text ({exc}); fix or remove it") from None
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)]
    named = [(number, name) for number, name in lines if name]
    if not named:
        raise DataError(f"{path} names no class; give one name a line, or remove it")
    if len(named) > MAX_CLASSES:
        raise DataError(
            f"{path} names {len(named)} classes, more than {MAX_CLASSES}; give one name a line "
            "for each label the dataset uses"
        )
    first = {}
    for number, name in named:
        if len(name) > MAX_NAME_LENGTH:
            raise DataError(
                f"{path} line {number}: a name of {len(name)} characters, over "
                f"{MAX_NAME_LENGTH}; shorten it"
            )
        if name in first:
            raise DataError(
                f"{path} names {name!r} twice (lines {first[name]} and {number}); give each "
                "class a name of its own"
            )
        first[name] = number
    return tuple(name for _, name in named)


def load_dataset(
    dataset: Dataset,
    data_dir: str | Path | None = None,
    mirrors: list[str] | None = None,
    progress: bool = True,
    parts: tuple[str, ...] = ("train", "test"),
    **download_options,
) -> dict[str, np.ndarray]:
    """The uint8 arrays of `parts`: train-images (n, h, w), train-labels (n,), test-images,
    test-labels. A named dataset is read from its cache (data_dir/NAME/, or data_dir itself
    when it already holds the files) and downloaded into it when missing; a folder's files
    are read and their SHA-256 recorded in dataset.sha256."""
    arrays = {}
    for key, (name, sha256) in dataset.files.items():
        if key.split("-")[0] not in parts:
            continue
        if dataset.folder is not None:
            raw = _read_folder_file(dataset.folder, name)
            import hashlib  # here: `mlp predict` never needs it

            dataset.sha256[key] = hashlib.sha256(raw).hexdigest()
        else:
            raw = _cached_or_downloaded(
                dataset, name, sha256, data_dir, mirrors, progress, **download_options
            )
        arrays[key] = mnist.parse_idx(raw, _where(dataset, name))
    check_arrays(dataset, arrays, parts)
    return arrays


def _cached_or_downloaded(dataset, name, sha256, data_dir, mirrors, progress, **options):
    root = expanded(data_dir) if data_dir else default_data_dir()
    own = root / dataset.name
    raw = read_cached(own, name, sha256)
    if raw is None:
        raw = read_cached(root, name, sha256)  # a folder given as --data-dir that has them
    if raw is None:
        raw = download(
            name,
            sha256,
            mirrors or dataset.default_mirrors(),
            own,
            progress=progress,
            mirror_env=dataset.mirror_env,
            **options,
        )
    return raw


def _read_folder_file(folder: Path, name: str) -> bytes:
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            if path.stat().st_size > MAX_FOLDER_IDX_BYTES:
                raise DataError(f"{path} is larger than {MAX_FOLDER_IDX_BYTES >> 20} MiB")
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise DataError(f"cannot read {path} ({exc.strerror})") from None
            return bytes(decompress(data, str(path), MAX_FOLDER_IDX_BYTES))
    raise DataError(f"{folder} lacks {name} (or {name}.gz), one of the four IDX files")


def _where(dataset: Dataset, name: str) -> str:
    return str(dataset.folder / name) if dataset.folder else f"{dataset.name} {name}"


def check_arrays(dataset: Dataset, arrays: dict[str, np.ndarray], parts: tuple[str, ...]) -> None:
    """DataError, naming the file, when the arrays do not make a dataset."""
    shape = None
    for part in parts:
        images, labels = arrays[f"{part}-images"], arrays[f"{part}-labels"]
        image_file = _where(dataset, dataset.files[f"{part}-images"][0])
        label_file = _where(dataset, dataset.files[f"{part}-labels"][0])
        if images.ndim != 3 or min(images.shape) == 0:
            raise DataError(f"{image_file} holds an array of shape {images.shape}, not images")
        if labels.ndim != 1:
            raise DataError(f"{label_file} holds an array of shape {labels.shape}, not labels")
        if len(images) != len(labels):
            raise DataError(
                f"{label_file} holds {len(labels)} labels but {image_file} holds "
                f"{len(images)} images; the counts must match"
            )
        if shape is not None and images.shape[1:] != shape:
            raise DataError(
                f"{image_file} holds {images.shape[1]}x{images.shape[2]} images but the "
                f"training images are {shape[0]}x{shape[1]}; both must be the same size"
            )
        shape = images.shape[1:]
        names = dataset.class_names
        if names is not None and labels.max() >= len(names):
            raise DataError(
                f"{label_file} holds label {labels.max()}, beyond the {len(names)} classes "
                f"0..{len(names) - 1} that {CLASSES_FILE} names"
            )


def class_count(dataset: Dataset, arrays: dict[str, np.ndarray]) -> int:
    """K: the class names' count, else the largest training label + 1 (DataError past
    MAX_CLASSES: labels that large are not classes)."""
    if dataset.class_names is not None:
        return len(dataset.class_names)
    count = int(arrays["train-labels"].max()) + 1
    if count > MAX_CLASSES:
        raise DataError(
            f"{_where(dataset, dataset.files['train-labels'][0])} holds label {count - 1}: a "
            f"network of more than {MAX_CLASSES} outputs; labels must be classes 0, 1, 2, ..."
        )
    return count


def check_test_labels(dataset: Dataset, arrays: dict[str, np.ndarray], classes: int) -> None:
    """DataError when a test label is beyond the classes the training labels make."""
    labels = arrays.get("test-labels")
    if labels is not None and len(labels) and labels.max() >= classes:
        raise DataError(
            f"{_where(dataset, dataset.files['test-labels'][0])} holds label {labels.max()}, "
            f"but the training labels make {classes} classes, 0..{classes - 1}"
        )
