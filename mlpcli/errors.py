"""One exception family. Every message says what is wrong and what to do about it."""


class MlpError(Exception):
    """Base of every error mlpcli raises on purpose; the CLI shows its message on one line."""


class DataError(MlpError):
    """A dataset file is missing, malformed, or fails its checksum."""


class CacheError(DataError):
    """The data folder cannot be written: no mirror can help, so downloading stops at once."""


class DownloadError(DataError):
    """No mirror could deliver a file; the message lists what each mirror answered."""


class CheckpointError(MlpError):
    """A checkpoint cannot be read or written."""


class ImageError(MlpError):
    """An image file cannot be read."""


class ConfigError(MlpError):
    """A training option or config file value is invalid."""


class TrainingDiverged(MlpError):
    """The loss became NaN or infinite."""
