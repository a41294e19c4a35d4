"""The Python API: everything the CLI does, as plain functions, one import for all of it.

from mlpcli import TrainConfig, train, save_checkpoint, load_checkpoint, predict_images
result = train(TrainConfig(layers=[784, 64, 10], epochs=5, optimizer="adam", lr=1e-3))
save_checkpoint("checkpoint.npz", result.model, result.meta, result.resume)

Each job has its module: config.py (the options), run.py (start, train, resume),
evaluation.py, report/summary.py (describe, the report page), advice.py, prediction.py.
"""

# ruff: noqa: F401 (the names are this module's, imported for its users)
from .advice import did_not_learn
from .config import (
    DEFAULT_EPOCHS,
    DEFAULT_HIDDEN,
    FULL_BATCH_EPOCHS,
    INPUT_SIZE,
    RANGES,
    TrainConfig,
)
from .evaluation import SPLITS, evaluate
from .prediction import (
    OVERFLOW,
    NumberReading,
    Prediction,
    predict_array,
    predict_images,
    read_number,
)
from .report.summary import describe, report_page
from .run import (
    RESUMABLE_CHANGES,
    TrainResult,
    augment_preview,
    load_data,
    resume_config,
    start_run,
    train,
    typed,
)
