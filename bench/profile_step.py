"""Where one training step of the workbook's v2 set-up spends its time (torch.profiler, CPU).

    python bench/profile_step.py [--steps 3] [--method v2]

Builds the same Trainer as ``helpers.training.run`` (``prepare``), runs a warm-up step, then
profiles the next steps and prints the operators by total CPU time.
"""
import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from helpers import config, timing, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--method", default="v2")
    args = parser.parse_args()
    p = training.prepare(args.method, "quick", 0, output_dir=config.output_dir("bench", "profile"))
    trainer = p.trainer
    timing.train_steps(trainer, 1)  # warm-up: allocator, first kernels
    with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        timing.train_steps(trainer, args.steps)  # no evaluation: the epoch-end one would land in the profile
    table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=25)
    print(f"{args.method}: {args.steps} steps, batch {trainer.args.per_device_train_batch_size}, "
          f"{torch.get_num_threads()} threads, precision {p.cfg['precision_used']}")
    print(table)


if __name__ == "__main__":
    main()
