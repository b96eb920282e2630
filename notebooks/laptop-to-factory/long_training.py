"""A stand-in for a long training: `steps` steps of work, a checkpoint after each, and a clean
stop on SIGUSR1 (the signal Slurm sends before the time limit when asked with --signal).

    python long_training.py CHECKPOINT_DIR [--steps 40] [--seconds-per-step 0.2]

Exit status 0: all steps done. 3: stopped early with a checkpoint saved; run again to resume.
"""

import argparse
import json
import os
import signal
import time
from pathlib import Path

STOPPED_EARLY = 3
stop_requested = False


def request_stop(signum, frame):
    global stop_requested
    stop_requested = True  # finish the current step, checkpoint, then exit


def save(state: dict, path: Path) -> None:
    """Atomically: a job killed while writing leaves the previous checkpoint intact."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, path)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint_dir")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seconds-per-step", type=float, default=0.2)
    args = parser.parse_args()
    signal.signal(signal.SIGUSR1, request_stop)
    folder = Path(args.checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "state.json"
    state = json.loads(path.read_text()) if path.exists() else {"step": 0, "total": 0}
    print(f"starting at step {state['step']}", flush=True)
    while state["step"] < args.steps:
        time.sleep(args.seconds_per_step)  # the work of one step
        state = {"step": state["step"] + 1, "total": state["total"] + state["step"] + 1}
        save(state, path)
        if stop_requested:
            print(f"signal received: checkpoint at step {state['step']}, stopping", flush=True)
            return STOPPED_EARLY
    print(f"done: {state['step']} steps, total {state['total']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
