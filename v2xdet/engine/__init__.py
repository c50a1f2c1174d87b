"""Training loop, checkpoints, distributed set-up and the inference runner.

The engine talks to the detection stages only through a :class:`~v2xdet.engine.task.Task`.
"""
from .allocator import tune_allocator
from .checkpoint import CheckpointError, atomic_save, load_checkpoint, load_state_strict
from .distributed import DistContext, init_distributed, shutdown
from .task import FrameResult, Task
from .trainer import Trainer, TrainOptions, TrainState

__all__ = ["CheckpointError", "DistContext", "FrameResult", "Task", "TrainOptions", "TrainState", "Trainer",
           "atomic_save", "init_distributed", "load_checkpoint", "load_state_strict", "shutdown",
           "tune_allocator"]
