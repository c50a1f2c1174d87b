"""Run logging: a plain log file in the model dir, console messages and tensorboard scalars.

Only the main process writes; on other ranks a :class:`RunLog` is created disabled and every
call is a no-op.
"""
from __future__ import annotations

import logging
from pathlib import Path

LOG_FILE = "train.log"


class RunLog:
    def __init__(self, model_dir, enabled: bool = True, log_name: str = LOG_FILE, console: bool = True):
        self.enabled = enabled
        self.writer = None
        self.logger = logging.getLogger(f"v2xdet.run.{Path(model_dir).resolve()}.{log_name}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        for handler in list(self.logger.handlers):
            self.logger.removeHandler(handler)
            handler.close()
        if not enabled:
            self.logger.addHandler(logging.NullHandler())
            return
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
        file_handler = logging.FileHandler(Path(model_dir) / log_name, encoding="utf-8")
        file_handler.setFormatter(fmt)
        self.logger.addHandler(file_handler)
        if console:
            stream = logging.StreamHandler()
            stream.setFormatter(logging.Formatter("%(message)s"))
            self.logger.addHandler(stream)
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(log_dir=str(model_dir))

    def info(self, msg: str) -> None:
        self.logger.info(msg)

    def warning(self, msg: str) -> None:
        self.logger.warning(msg)

    def scalars(self, values: dict, step: int, prefix: str = "") -> None:
        """Write each ``{name: number}`` as the tensorboard scalar ``prefix + name`` at ``step``."""
        if self.writer is None:
            return
        for name, value in values.items():
            self.writer.add_scalar(prefix + name, float(value), step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()
        for handler in self.logger.handlers:
            handler.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        for handler in list(self.logger.handlers):
            self.logger.removeHandler(handler)
            handler.close()
