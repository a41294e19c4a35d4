"""Benchmark mlpcli against PyTorch and scikit-learn on the same work, in one interleaved run.

    python scripts/bench.py --data-dir ../shared/mnist      # or any folder with the MNIST files

Each measurement runs in a fresh subprocess (so no two BLAS thread pools ever coexist), and the
frameworks take turns: ours, theirs, ours, theirs... Training figures are seconds for one epoch
over the 60,000 MNIST training images, float32, cross-entropy, after a short warm-up, with
plain SGD, SGD with momentum 0.9 (heavy-ball or Nesterov's), Adam, or AdamW (weight decay
0.01), each framework with its own implementation of the same optimizer; data loading is not
timed, but the compiled step's compression of the ink, which fit() does, is. "mlpcli" is
what `mlp train` runs by default (--engine auto: the compiled step, for every row here);
"mlpcli --engine numpy" is the fused NumPy engine (plain SGD only), "mlpcli --engine
reference" the readable one. Each worker times 3 epochs in a row and reports their mean, as
one epoch of 0.1 s is too short to rise above this shared machine's drift. PyTorch at batch
size 1 is timed on the first 6,000 samples of each epoch and scaled to 60,000, as a full
epoch takes minutes. PyTorch and scikit-learn are optional: what is not installed is
skipped. A ratio theirs/ours is that of the medians, followed by the range of the ratios
within each repeat, whose runs were seconds apart. `--configs` runs some configs alone.
Process figures: peak RSS of `mlp train` (default network, one epoch), whole-process wall time
of `mlp predict` against `python -c "import numpy, PIL.Image"`, and of `mlp evaluate`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name: (layers, batch size, learning rate, optimizer)
CONFIGS = {
    "784-64-10, batch 64": ([784, 64, 10], 64, 0.1, "sgd"),
    "784-64-10, batch 1": ([784, 64, 10], 1, 0.005, "sgd"),
    "784-800-10, batch 128": ([784, 800, 10], 128, 0.1, "sgd"),
    "784-64-10, batch 64, momentum": ([784, 64, 10], 64, 0.05, "momentum"),
    "784-64-10, batch 64, Adam": ([784, 64, 10], 64, 0.001, "adam"),
    "784-800-10, batch 128, momentum": ([784, 800, 10], 128, 0.05, "momentum"),
    "784-800-10, batch 128, Adam": ([784, 800, 10], 128, 0.001, "adam"),
    "784-64-10, batch 64, Nesterov": ([784, 64, 10], 64, 0.05, "nesterov"),
    "784-64-10, batch 64, AdamW": ([784, 64, 10], 64, 0.001, "adamw"),
    "784-800-10, batch 128, Nesterov": ([784, 800, 10], 128, 0.05, "nesterov"),
    "784-800-10, batch 128, AdamW": ([784, 800, 10], 128, 0.001, "adamw"),
}
ADAMW_DECAY = 0.01  # torch.optim.AdamW's default weight decay, given to both
PLAIN = ["784-64-10, batch 64", "784-800-10, batch 128"]
OPTIMIZED = [name for name, config in CONFIGS.items() if config[3] != "sgd"]
SKLEARN = ["784-64-10, batch 64", *[c for c in OPTIMIZED if "64-10" in c and "AdamW" not in c]]
FRAMEWORKS = {  # name: (module it needs, configs it runs)
    "mlpcli": (None, list(CONFIGS)),
    "mlpcli --engine numpy": (None, PLAIN),
    "mlpcli --engine reference": (None, OPTIMIZED),
    "floor: the matrix products alone": (None, PLAIN),
    "PyTorch (1 thread)": ("torch", list(CONFIGS)),
    "PyTorch (2 threads)": ("torch", PLAIN + OPTIMIZED),
    "scikit-learn": ("sklearn", SKLEARN),
}
TORCH_BATCH_ONE_SAMPLES = 6000
EPOCHS = 3  # timed per worker, in a row; the figure is their mean


def _training_data(data_dir: str):
    """MNIST's 60k training images as uint8 rows, their normalization and labels."""
    from mlpcli.data import load_mnist, normalization_stats

    mnist = load_mnist(data_dir, progress=False)
    images = mnist["train-images"].reshape(60000, 784)
    return images, normalization_stats(images), mnist["train-labels"].astype("int64")


def _time_mlpcli(layers, batch_size, learning_rate, optimizer, data_dir, engine) -> float:
    from mlpcli.api import TrainConfig, start_run
    from mlpcli.data import Split
    from mlpcli.engines.base import usable_cpus
    from mlpcli.training import fit

    images, stats, labels = _training_data(data_dir)
    train = Split(images, labels, stats)
    config = TrainConfig(
        layers=layers,
        lr=learning_rate,
        optimizer=optimizer,
        weight_decay=ADAMW_DECAY if optimizer == "adamw" else 0.0,
        batch_size=batch_size,
        epochs=1,
        patience=0,
        schedule="constant",  # the plain epoch PyTorch's is held to, whatever the defaults
        augment="",
        engine=engine,
        # the cores mlp train takes on an idle machine, without its 0.1 s look at the load
        threads=usable_cpus(),
    )
    warm_up = Split(images[:2048], labels[:2048], stats)
    fit(start_run(config), warm_up, None, config.fit_options(), progress=False)
    config.epochs = EPOCHS
    state = start_run(config)
    started = time.perf_counter()
    result = fit(state, train, None, config.fit_options(), progress=False)
    seconds = (time.perf_counter() - started) / EPOCHS
    if engine == "auto" and result.engine != "compiled":
        print(f"note: auto trained on {result.engine}", file=sys.stderr)
    return seconds


def _time_products(layers, batch_size) -> float:
    """An epoch of the matrix products a training step cannot avoid (forward A @ W, weight
    gradient A^T dZ, and dZ W^T below the top layer), under mlpcli's BLAS thread limit."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from mlpcli.engines.base import blas_threads

    rng = np.random.default_rng(0)
    shapes = list(zip(layers, layers[1:], strict=False))
    A = [rng.standard_normal((batch_size, i), dtype=np.float32) for i, _ in shapes]
    W = [rng.standard_normal((i, o), dtype=np.float32) for i, o in shapes]
    dZ = [rng.standard_normal((batch_size, o), dtype=np.float32) for _, o in shapes]

    def epoch(steps: int) -> None:
        for _ in range(steps):
            for layer in range(len(W)):
                A[layer] @ W[layer]
                A[layer].T @ dZ[layer]
                if layer:
                    dZ[layer] @ W[layer].T

    with threadpool_limits(blas_threads(layers, batch_size), user_api="blas"):
        epoch(50)
        started = time.perf_counter()
        epoch(EPOCHS * -(-60000 // batch_size))
        return (time.perf_counter() - started) / EPOCHS


def _normalized(data_dir):
    from mlpcli.data import normalize

    images, (mean, std), labels = _training_data(data_dir)
    return normalize(images, mean, std), labels


def _time_torch(layers, batch_size, learning_rate, optimizer_name, data_dir, threads) -> float:
    import torch

    torch.set_num_threads(threads)
    X, y = (torch.from_numpy(a) for a in _normalized(data_dir))
    parts = []
    for fan_in, fan_out in zip(layers, layers[1:], strict=False):
        parts += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*parts[:-1])
    if optimizer_name == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    elif optimizer_name == "adamw":
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=learning_rate, weight_decay=ADAMW_DECAY
        )
    else:
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=learning_rate,
            momentum=0.0 if optimizer_name == "sgd" else 0.9,
            nesterov=optimizer_name == "nesterov",
        )
    count = TORCH_BATCH_ONE_SAMPLES if batch_size == 1 else len(y)

    def epoch(samples: int) -> None:
        order = torch.randperm(samples)
        for start in range(0, samples, batch_size):
            rows = order[start : start + batch_size]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(X[rows]), y[rows]).backward()
            optimizer.step()

    epoch(min(count, 2048))
    started = time.perf_counter()
    for _ in range(EPOCHS):
        epoch(count)
    return (time.perf_counter() - started) / EPOCHS * len(y) / count


def _time_sklearn(layers, batch_size, learning_rate, optimizer, data_dir) -> float:
    import warnings

    from sklearn.neural_network import MLPClassifier

    X, y = _normalized(data_dir)
    model = MLPClassifier(
        hidden_layer_sizes=layers[1:-1],
        solver="adam" if optimizer == "adam" else "sgd",
        batch_size=batch_size,
        learning_rate_init=learning_rate,
        momentum=0.9 if optimizer in ("momentum", "nesterov") else 0.0,
        nesterovs_momentum=optimizer == "nesterov",
        alpha=0.0,
        random_state=0,
    )
    warnings.simplefilter("ignore")
    model.partial_fit(X[:2048], y[:2048], classes=list(range(10)))
    started = time.perf_counter()
    for _ in range(EPOCHS):
        model.partial_fit(X, y)  # partial_fit with the sgd solver is one epoch
    return (time.perf_counter() - started) / EPOCHS


def worker(framework: str, config: str, data_dir: str) -> float | None:
    if framework == "time to target":
        return _time_to_target(data_dir)
    if framework == "augment":
        return _time_augmentation(config, data_dir)
    layers, batch_size, learning_rate, optimizer = CONFIGS[config]
    if framework.startswith("mlpcli"):
        engine = framework.split()[-1] if "--engine" in framework else "auto"
        return _time_mlpcli(layers, batch_size, learning_rate, optimizer, data_dir, engine)
    if framework.startswith("floor"):
        return _time_products(layers, batch_size)
    if framework.startswith("PyTorch"):
        threads = 1 if "1 thread" in framework else 2
        return _time_torch(layers, batch_size, learning_rate, optimizer, data_dir, threads)
    return _time_sklearn(layers, batch_size, learning_rate, optimizer, data_dir)


def _run_worker(framework: str, config: str, data_dir: str) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", framework, config, "--data-dir", data_dir],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.splitlines()[-1])


def _installed(module: str | None) -> bool:
    if module is None:
        return True
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _wall_and_rss(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS in MiB of one run of `command`."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()}")
    process.stderr.close()
    return seconds, usage.ru_maxrss / 1024  # Linux reports KiB


def _median_text(values: list[float], unit: str = "") -> str:
    return f"{statistics.median(values):.3g}{unit} ({min(values):.3g}-{max(values):.3g})"


def bench_training(data_dir: str, repeats: int) -> list[str]:
    runs = {  # config by config, so that the frameworks alternate on each
        (framework, config): []
        for config in CONFIGS
        for framework, (module, configs) in FRAMEWORKS.items()
        if _installed(module) and config in configs
    }
    skipped = [name for name, (module, _) in FRAMEWORKS.items() if not _installed(module)]
    for repeat in range(repeats):
        for (framework, config), times in runs.items():
            times.append(_run_worker(framework, config, data_dir))
            print(f"  {repeat + 1}: {framework}, {config}: {times[-1]:.3f} s", file=sys.stderr)
    lines = [
        "| seconds per epoch, median (min-max) | " + " | ".join(FRAMEWORKS) + " |",
        "|---" * (len(FRAMEWORKS) + 1) + "|",
    ]
    for config in CONFIGS:
        cells = []
        for framework in FRAMEWORKS:
            times = runs.get((framework, config))
            if not times:
                cells.append("not installed" if framework in skipped else "n/a")
                continue
            cell = _median_text(times)
            if framework.startswith(("PyTorch", "scikit")):
                ours = runs["mlpcli", config]
                ratio = statistics.median(times) / statistics.median(ours)
                # within a repeat ours and theirs ran seconds apart, through the same drift
                paired = [theirs / mine for theirs, mine in zip(times, ours, strict=True)]
                cell += f", {ratio:.2f}x ours ({min(paired):.2f}-{max(paired):.2f}x by repeat)"
            cells.append(cell)
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return lines


RECIPE = Path(__file__).parent.parent / "configs" / "fast99.toml"
TARGET = 0.99


def _time_to_target(data_dir: str) -> float | None:
    """Seconds of training (the epochs' own, as `mlp train` reports them: each epoch's
    distortions and validation included) until the fast99 recipe first reaches TARGET test
    accuracy, measured after each epoch outside the timed part; None if it never does."""
    from mlpcli.api import TrainConfig, start_run
    from mlpcli.data import load_mnist, make_splits
    from mlpcli.report.metrics import evaluate_split
    from mlpcli.training import fit

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    with open(RECIPE, "rb") as file:
        config = TrainConfig(**{k.replace("-", "_"): v for k, v in tomllib.load(file).items()})
    splits, _ = make_splits(load_mnist(data_dir), config.validation_size, config.seed)
    state, trained, reached = start_run(config), [0.0], []

    def on_epoch(record: dict) -> None:
        trained[0] += record["seconds"]
        if not reached and evaluate_split(state.model, splits["test"])["accuracy"] >= TARGET:
            reached.append(trained[0])
            raise KeyboardInterrupt  # fit() stops as on Ctrl-C

    fit(state, splits["train"], splits["validation"], config.fit_options(), False, on_epoch)
    return reached[0] if reached else None


DEFAULT_RECIPE = Path(__file__).resolve().parents[1] / "configs" / "default.toml"
AUGMENTATIONS = ("affine", "elastic", "affine,elastic")
AUGMENT_BESIDE = "784-800-10, batch 128, momentum"  # the training epoch they are held to


def _time_augmentation(kinds: str, data_dir: str) -> float:
    """Seconds to distort 50,000 training images once, as each epoch of --augment does (into
    the buffer the epochs reuse), on one thread: the mean of EPOCHS, after a warm-up."""
    from threadpoolctl import threadpool_limits

    from mlpcli.api import TrainConfig
    from mlpcli.data.augment import epoch_rng

    images, _, _ = _training_data(data_dir)
    images = images[:50_000].reshape(-1, 28, 28)
    augmentation = TrainConfig(augment=kinds).augmentation()
    out = images.copy()  # a buffer for the distortions, its pages touched
    with threadpool_limits(1, "blas"):
        augmentation.distort(images, epoch_rng(0, 0), out)
        started = time.perf_counter()
        for epoch in range(1, EPOCHS + 1):
            augmentation.distort(images, epoch_rng(0, epoch), out)
    return (time.perf_counter() - started) / EPOCHS


def bench_augmentation(data_dir: str, repeats: int) -> list[str]:
    """Each kind of distortion of an epoch, beside a training epoch of AUGMENT_BESIDE."""
    runs = {kinds: [] for kinds in ("training", *AUGMENTATIONS)}
    for _ in range(repeats):
        for kinds, times in runs.items():
            framework, config = (
                ("mlpcli", AUGMENT_BESIDE) if kinds == "training" else ("augment", kinds)
            )
            times.append(_run_worker(framework, config, data_dir))
    training = statistics.median(runs.pop("training"))
    lines = [
        f"| one epoch of 50,000 images | seconds | share of a training epoch of "
        f"{AUGMENT_BESIDE} ({training:.3f} s) |",
        "|---|---|---|",
    ]
    for kinds, times in runs.items():
        lines.append(
            f"| --augment {kinds} (one thread) | {_median_text(times)} | "
            f"{statistics.median(times) / training:.2f} |"
        )
    return lines


def _torch_time_to_target(data_dir: str) -> float | None:
    script = Path(__file__).with_name("torch_recipe.py")
    command = [sys.executable, str(script), str(RECIPE), "--data-dir", data_dir]
    out = subprocess.run(
        [*command, "--stop-at-target", "--target", str(TARGET)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.splitlines()[-1])["reached"]


def bench_time_to_target(data_dir: str, repeats: int) -> list[str]:
    """The fast99 recipe in mlpcli and in PyTorch (scripts/torch_recipe.py), in turns."""
    ours, theirs = [], []
    for repeat in range(repeats):
        ours.append(_run_worker("time to target", "mlpcli", data_dir))
        print(f"  {repeat + 1}: mlpcli reached {TARGET:.1%} in {ours[-1]} s", file=sys.stderr)
        if _installed("torch"):
            theirs.append(_torch_time_to_target(data_dir))
            print(f"  {repeat + 1}: PyTorch in {theirs[-1]} s", file=sys.stderr)
    lines = [f"| time to {TARGET:.1%} test, {RECIPE.name} | mlpcli | PyTorch (2 threads) |"]
    lines.append("|---|---|---|")
    cells = [_median_text(ours, " s") if None not in ours else f"not reached: {ours}"]
    if not theirs:
        cells.append("not installed")
    elif None in theirs or None in ours:
        cells.append(f"{theirs}")
    else:
        ratio = statistics.median(theirs) / statistics.median(ours)
        cells.append(f"{_median_text(theirs, ' s')}, {ratio:.2f}x ours")
    return lines + ["| seconds of training | " + " | ".join(cells) + " |"]


def _digit_png(data_dir: str, path: Path) -> None:
    """A test-set digit as dark ink on white paper, three times MNIST's size."""
    from PIL import Image

    from mlpcli.data import load_mnist

    digit = load_mnist(data_dir, progress=False)["test-images"][0]
    Image.fromarray(255 - digit).resize((84, 84)).save(path)


def _photo_jpeg(digit_png: Path, path: Path) -> None:
    """The digit on a photographed page: 320x240, light falling off across it and a shadow
    over a third, JPEG (what io/photo.py works on)."""
    import numpy as np
    from PIL import Image

    ink = 1 - np.asarray(Image.open(digit_png).convert("L"), np.float32) / 255
    page = np.zeros((240, 320), np.float32)
    page[70:154, 110:194] = ink
    light = np.linspace(150, 210, 320, dtype=np.float32)[None, :] * np.ones((240, 1), np.float32)
    light[:, 220:] *= 0.7
    gray = light * (0.9 - 0.75 * page)
    Image.fromarray(gray.clip(0, 255).astype(np.uint8)).save(path, quality=80)


def bench_processes(data_dir: str, repeats: int) -> list[str]:
    script = Path(sys.executable).with_name("mlp")  # the command users run, if installed
    mlp = [str(script)] if script.exists() else [sys.executable, "-m", "mlpcli"]
    with tempfile.TemporaryDirectory() as folder:
        checkpoint, image = Path(folder) / "bench.npz", Path(folder) / "digit.png"
        photo = Path(folder) / "photo.jpg"
        train = [*mlp, "train", "--epochs", "1", "--data-dir", data_dir, "-q", "--out"]
        rss = [_wall_and_rss([*train, str(checkpoint), "--force"])[1] for _ in range(repeats)]
        _digit_png(data_dir, image)
        _photo_jpeg(image, photo)
        predict, on_photo, imports, evaluate = [], [], [], []
        for _ in range(max(repeats, 15)):  # in turns, so that a busy spell hits all three
            predict.append(
                _wall_and_rss([*mlp, "predict", str(image), "--checkpoint", str(checkpoint)])[0]
            )
            on_photo.append(
                _wall_and_rss([*mlp, "predict", str(photo), "--checkpoint", str(checkpoint)])[0]
            )
            imports.append(_wall_and_rss([sys.executable, "-c", "import numpy, PIL.Image"])[0])
        for _ in range(repeats):
            evaluate.append(
                _wall_and_rss([*mlp, "evaluate", str(checkpoint), "--data-dir", data_dir])[0]
            )
    ratio = statistics.median(predict) / statistics.median(imports)
    photo_ratio = statistics.median(on_photo) / statistics.median(imports)
    idle, busy = _busy_machine(mlp, data_dir, repeats)
    return [
        "| process | median (min-max) |",
        "|---|---|",
        f"| peak RSS of `mlp train --epochs 1` (784-256-10) | {_median_text(rss, ' MiB')} |",
        f"| `mlp predict digit.png`, whole process | {_median_text(predict, ' s')}, "
        f"{ratio:.2f}x the imports |",
        f"| `mlp predict photo.jpg` (320x240, shaded), whole process | "
        f"{_median_text(on_photo, ' s')}, {photo_ratio:.2f}x the imports |",
        f'| `python -c "import numpy, PIL.Image"` | {_median_text(imports, " s")} |',
        f"| `mlp evaluate` on the 10k test set, whole process | {_median_text(evaluate, ' s')} |",
        f"| `mlp train --config configs/default.toml`, idle | {_median_text(idle, ' s')} |",
        f"| the same with one core kept busy by another process | {_median_text(busy, ' s')}, "
        f"{statistics.median(busy) / statistics.median(idle):.2f}x idle |",
    ]


def bench_recipe(data_dir: str, repeats: int) -> list[str]:
    """The default recipe, whole process: `mlp train --config configs/default.toml` against
    scripts/torch_recipe.py training the same recipe in PyTorch (2 threads), in turns. The
    PyTorch script leaves out the typed digits (8% more images for mlpcli) and measures the
    test accuracy after each epoch where mlpcli measures the validation split."""
    script = Path(sys.executable).with_name("mlp")
    mlp = [str(script)] if script.exists() else [sys.executable, "-m", "mlpcli"]
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as folder:
        train = [*mlp, "train", "--config", str(DEFAULT_RECIPE), "--data-dir", data_dir, "-q"]
        train += ["--out", str(Path(folder) / "recipe.npz"), "--force"]
        torch = [sys.executable, str(Path(__file__).with_name("torch_recipe.py"))]
        torch += [str(DEFAULT_RECIPE), "--data-dir", data_dir, "--threads", "2"]
        for repeat in range(repeats):
            ours.append(_wall_and_rss(train)[0])
            if _installed("torch"):
                theirs.append(_wall_and_rss(torch)[0])
            print(f"  {repeat + 1}: default recipe {ours[-1]:.1f} s, {theirs}", file=sys.stderr)
    cells = [_median_text(ours, " s")]
    if theirs:
        ratio = statistics.median(theirs) / statistics.median(ours)
        cells.append(f"{_median_text(theirs, ' s')}, {ratio:.2f}x ours")
    else:
        cells.append("not installed")
    return [
        f"| {DEFAULT_RECIPE.name}, whole process | mlpcli | PyTorch (2 threads) |",
        "|---|---|---|",
        "| wall seconds | " + " | ".join(cells) + " |",
    ]


def machine() -> list[str]:
    """What the figures depend on: the CPU, its SIMD, the compiled step's build, and the
    engine `auto` takes for the default recipe here."""
    flags, model = set(), "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    simd = [f for f in ("avx512f", "avx512bw", "avx512vl", "avx2", "fma", "sse4_2") if f in flags]
    from mlpcli.engines import compiled

    path = compiled.simd_path() if compiled.available() else "not built"
    return [
        f"CPU: {model}, {os.cpu_count()} cores; SIMD: {', '.join(simd) or 'none listed'}",
        f"compiled step: the {path} build (of {', '.join(compiled.simd_paths()) or 'none'})",
    ]


def _auto_choice(data_dir: str) -> str:
    """The engine `auto` takes for the default recipe here, and by how much."""
    from mlpcli.api import TrainConfig, start_run
    from mlpcli.data import Split
    from mlpcli.engines.base import usable_cpus
    from mlpcli.engines.choice import fastest_engine, time_engine

    images, stats, labels = _training_data(data_dir)
    train = Split(images[:50_000], labels[:50_000], stats, (28, 28))
    config = TrainConfig(layers=[784, 256, 10])
    config.validate()
    state, threads = start_run(config), usable_cpus()
    trial = (state.model, state.optimizer, None, train, config.batch_size, threads)
    choice = fastest_engine(
        config.step_options(), train, lambda engine: time_engine(engine, *trial)
    )
    return f"auto, default recipe: {choice.summary()}"


def _busy_machine(mlp: list[str], data_dir: str, repeats: int) -> tuple[list, list]:
    """Wall seconds of the default run, idle and beside a process that spins on one core
    (at most 10 minutes, then it ends itself), in turns."""
    idle, busy = [], []
    with tempfile.TemporaryDirectory() as folder:
        train = [*mlp, "train", "--config", str(DEFAULT_RECIPE), "--data-dir", data_dir, "-q"]
        train += ["--out", str(Path(folder) / "busy.npz"), "--force"]
        for _ in range(repeats):
            idle.append(_wall_and_rss(train)[0])
            spin = "import time\nend = time.time() + 600\nwhile time.time() < end: pass"
            spinner = subprocess.Popen([sys.executable, "-c", spin])
            try:
                time.sleep(0.5)
                busy.append(_wall_and_rss(train)[0])
            finally:
                spinner.kill()
                spinner.wait()
    return idle, busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder with the MNIST files (default: the tool's cache, downloading what it lacks)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement")
    parser.add_argument(
        "--only",
        choices=["training", "processes", "augmentation", "time-to-99", "recipe"],
        help="run one part",
    )
    parser.add_argument(
        "--configs", nargs="+", choices=list(CONFIGS), metavar="NAME", help="these configs alone"
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.data_dir is None:
        from mlpcli.data import default_data_dir, load_mnist

        load_mnist(progress=True)
        args.data_dir = str(default_data_dir())
    if args.worker:
        print(json.dumps(worker(*args.worker, args.data_dir)))
        return
    print("\n".join([*machine(), _auto_choice(args.data_dir)]) + "\n")
    print(f"Python {sys.version.split()[0]}, {args.repeats} repeats", file=sys.stderr)
    if args.configs:
        for name in set(CONFIGS) - set(args.configs):
            del CONFIGS[name]
    if args.only in (None, "training"):
        print("\n".join(bench_training(args.data_dir, args.repeats)) + "\n")
    if args.only in (None, "processes"):
        print("\n".join(bench_processes(args.data_dir, args.repeats)) + "\n")
    if args.only in (None, "augmentation"):
        print("\n".join(bench_augmentation(args.data_dir, args.repeats)) + "\n")
    if args.only in (None, "recipe"):
        print("\n".join(bench_recipe(args.data_dir, args.repeats)) + "\n")
    if args.only in (None, "time-to-99"):
        print("\n".join(bench_time_to_target(args.data_dir, args.repeats)))


if __name__ == "__main__":
    main()
