"""Count the lines of each shard of a data set, and record where and with what it ran: the
stand-in for a job's work in "From laptop to AI factory" (section 6).

    python count_shards.py IN_DIR OUT.json
"""

import json
import os
import sys
from pathlib import Path

import torch


def main(source: Path, out: Path) -> None:
    lines = {p.name: len(p.read_text().splitlines()) for p in sorted(source.glob("shard-*.txt"))}
    summary = {
        "lines": lines,
        "read_from": str(source.resolve()),
        "stack": os.environ.get("FH_STACK", ""),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
        "torch_threads": torch.get_num_threads(),
    }
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"counted {sum(lines.values())} lines in {len(lines)} shards")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
