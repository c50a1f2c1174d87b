"""Run under ``torchrun --nproc_per_node=2``: train the tiny task with DDP, save each rank's weights."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_tiny_task import TinyTask, tiny_config  # noqa: E402

from v2xdet.engine.distributed import init_distributed, shutdown  # noqa: E402
from v2xdet.engine.trainer import Trainer, TrainOptions, unwrap  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(1)
    model_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    ctx = init_distributed(use_cuda=False)   # gloo on the CPU, also where a GPU is present
    cfg = tiny_config(epoches=2, eval_freq=2, save_every_steps=2)
    seen = []
    trainer = Trainer(TinyTask(cfg), model_dir, TrainOptions.from_config(cfg, progress=False), ctx=ctx,
                      on_step_end=lambda t: seen.append(t.state.global_step), log_console=False)
    trainer.fit()
    torch.save({"model": unwrap(trainer.model).state_dict(), "steps": seen,
                "first_order": list(trainer.sampler)}, out_dir / f"rank{ctx.rank}.pt")
    shutdown(ctx)
