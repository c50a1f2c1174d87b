"""Training loop, checkpoints, distributed set-up and the inference runner.

The engine talks to the detection stages only through a :class:`~v2xdet.engine.task.Task`.
"""
from .allocator import configure_allocator, tune_allocator
from .checkpoint import CheckpointError, atomic_save, load_checkpoint, load_state_strict
from .distributed import DistContext, init_distributed, shutdown
from .inference import InferenceOptions, InferenceReport, run_inference
from .rundir import prepare_run
from .task import FrameResult, Task
from .trainer import Trainer, TrainOptions, TrainState
from .v2x_task import V2XTask, inference_config

__all__ = ["CheckpointError", "DistContext", "FrameResult", "InferenceOptions", "InferenceReport", "Task",
           "TrainOptions", "TrainState", "Trainer", "V2XTask", "atomic_save", "inference_config",
           "init_distributed", "load_checkpoint", "load_state_strict", "prepare_run", "run_inference",
           "configure_allocator", "shutdown", "tune_allocator"]
