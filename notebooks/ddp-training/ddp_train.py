"""Data-parallel training of a small network on scikit-learn's digits with
DistributedDataParallel. One process per model replica, started either by `srun` (one Slurm
task each) or by `torchrun` (several processes in one task). Rank 0 writes the results.

    python ddp_train.py RESULT.json --variants '[{"per_task_batch": 32, "lr": 0.05}]' \
        [--seeds 0,1,2] [--epochs 4] [--checkpoint-dir DIR] [--stop-after K]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset


def rank_and_world() -> tuple[int, int, int, str]:
    """(rank, world size, local rank, launcher): torchrun sets RANK/WORLD_SIZE/LOCAL_RANK,
    srun sets SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID."""
    if "RANK" in os.environ:
        env = os.environ
        return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"]), "torchrun"
    env = os.environ
    return int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env["SLURM_LOCALID"]), "srun"


def pick_device(local_rank: int) -> torch.device:
    """This process's GPU, or the CPU. With `--gpus-per-task=1` every task sees only its own
    GPU, as cuda:0; the local rank picks a GPU only when the process sees several (torchrun,
    or `--gpus-per-node` without per-task binding)."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    index = local_rank if torch.cuda.device_count() > 1 else 0
    torch.cuda.set_device(index)  # NCCL and new CUDA tensors use this GPU from now on
    return torch.device("cuda", index)


def save_atomically(state: dict, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("result")
    parser.add_argument("--variants", required=True)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--stop-after", type=int)
    args = parser.parse_args()

    rank, world, local_rank, launcher = rank_and_world()
    device = pick_device(local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    # env:// rendezvous: MASTER_ADDR and MASTER_PORT come from the task script or torchrun
    dist.init_process_group(backend, rank=rank, world_size=world)
    threads = int(os.environ.get("SLURM_CPUS_PER_TASK", "1")) if launcher == "srun" else 1
    torch.set_num_threads(threads)

    digits = load_digits()
    X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    data = TensorDataset(X_train, y_train)

    def train(per_task_batch: int, lr: float, seed: int, epochs: int,
              checkpoints: bool = True) -> tuple[nn.Module, dict]:
        torch.manual_seed(seed)  # the same initial weights on every rank
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)).to(device)
        ids = [device.index] if device.type == "cuda" else None
        ddp = DistributedDataParallel(model, device_ids=ids)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=lr, momentum=0.9)
        # every rank gets its own 1/world of each epoch's shuffled samples
        sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=seed)
        # in-memory tensors: no workers; pinned memory only helps copies to a GPU
        loader = DataLoader(data, batch_size=per_task_batch, sampler=sampler,
                            pin_memory=device.type == "cuda", num_workers=0)
        checkpoint = None
        if args.checkpoint_dir and checkpoints:
            checkpoint = Path(args.checkpoint_dir) / "last.pt"
        first = 0
        if checkpoint and checkpoint.exists():  # every rank reads the same file
            state = torch.load(checkpoint, map_location=device)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            first = state["epoch"] + 1  # the sampler's state is its epoch: set_epoch below
        last = min(epochs, args.stop_after) if args.stop_after and checkpoint else epochs
        start = time.perf_counter()
        for epoch in range(first, last):
            sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
            for xb, yb in loader:
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(ddp(xb), yb).backward()  # all-reduce overlaps this
                optimizer.step()
            if checkpoint:
                if rank == 0:  # one writer; the replicas are identical
                    checkpoint.parent.mkdir(parents=True, exist_ok=True)
                    save_atomically({"epoch": epoch, "model": model.state_dict(),
                                     "optimizer": optimizer.state_dict()}, checkpoint)
                dist.barrier()  # nobody goes on (or ends the job) before the file is complete
        seconds = time.perf_counter() - start
        with torch.no_grad():
            accuracy = (model(X_test.to(device)).argmax(1).cpu() == y_test).float().mean().item()
        checksum = sum(p.double().sum().item() for p in model.parameters())
        return model, {"seconds": seconds, "accuracy": accuracy, "checksum": checksum,
                       "steps_per_epoch": len(loader), "samples_per_task": len(sampler),
                       "epochs_run": last - first, "first_epoch": first + 1}

    variants = json.loads(args.variants)
    seeds = [int(s) for s in args.seeds.split(",")]
    # warm-up: connections, allocator, caches; untimed and never checkpointed
    train(variants[0]["per_task_batch"], variants[0]["lr"], seed=99, epochs=1, checkpoints=False)
    runs = []
    for variant in variants:
        per_seed = [train(variant["per_task_batch"], variant["lr"], seed, args.epochs)[1]
                    for seed in seeds]
        runs.append({**variant, "global_batch": variant["per_task_batch"] * world,
                     **{key: [r[key] for r in per_seed] for key in per_seed[0]}})
    if rank == 0:
        result = {"world": world, "backend": backend, "launcher": launcher,
                  "epochs": args.epochs, "seeds": seeds, "runs": runs}
        Path(args.result).write_text(json.dumps(result))
    dist.barrier()  # no rank tears down its connections while another still uses them
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    # Under srun, torchrun's workers on this torch build sometimes abort in C++ clean-up at
    # interpreter exit ("terminate called without an active exception"), after a clean
    # shutdown: the results are written, so leave without that clean-up.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
