"""One point of a learning-rate sweep: logistic regression by gradient descent on generated
data (no download), the validation loss (log-loss, lower is better) written as JSON.

    python sweep.py INDEX OUT_DIR        # INDEX picks the learning rate (SLURM_ARRAY_TASK_ID)
    python sweep.py best OUT_DIR         # the best of the results in OUT_DIR
"""

import json
import sys
from pathlib import Path

import numpy as np

RATES = [0.01, 0.1, 1.0, 10.0, 100.0]


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2000, 20))
    w = rng.normal(size=20)
    y = (X @ w + rng.normal(scale=2.0, size=2000) > 0).astype(float)
    return X, y


def train(lr: float, steps: int = 50) -> float:
    X, y = data()
    X_train, y_train, X_val, y_val = X[:1500], y[:1500], X[1500:], y[1500:]
    w = np.zeros(X.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(X_train @ w, -30, 30)))
        w -= lr * X_train.T @ (p - y_train) / len(y_train)
    p = np.clip(1 / (1 + np.exp(-np.clip(X_val @ w, -30, 30))), 1e-12, 1 - 1e-12)
    return float(-np.mean(y_val * np.log(p) + (1 - y_val) * np.log(1 - p)))


def best(out: Path) -> str:
    results = [json.loads(p.read_text()) for p in sorted(out.glob("result-*.json"))]
    top = min(results, key=lambda r: r["val_loss"])
    return (f"best learning rate: {top['lr']} (validation loss {top['val_loss']})"
            f" of {len(results)} results")


if __name__ == "__main__":
    if sys.argv[1] == "best":
        print(best(Path(sys.argv[2])))
        sys.exit(0)
    index, out = int(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    lr = RATES[index]
    result = {"index": index, "lr": lr, "val_loss": round(train(lr), 4)}
    (out / f"result-{index}.json").write_text(json.dumps(result))
    print(json.dumps(result))
