"""Bootstrap speed of `rating_metrics` against scoring each resample with scikit-learn calls.

Prints the ratio (sklearn-per-resample time / rating_metrics time) measured in the same run.
Run: .venv/bin/python benchmarks/rating_metrics.py [--n 500] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from recsaver.data.records import Prediction
from recsaver.metrics import point_metrics, rating_metrics


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    preds = [Prediction(f"x{i}", int(rng.integers(1, 6)), int(rng.integers(1, 6)), tuple(rng.dirichlet(np.ones(5))))
             for i in range(args.n)]
    t = time.perf_counter()
    rating_metrics(preds, n_resamples=args.resamples)
    ours = time.perf_counter() - t

    y = np.array([p.rating_true for p in preds])
    yp = np.array([p.rating_pred for p in preds])
    probs = np.array([p.probs for p in preds])
    t = time.perf_counter()
    for _ in range(args.resamples):
        idx = rng.integers(0, args.n, args.n)
        point_metrics(y[idx], yp[idx], probs[idx])
    naive = time.perf_counter() - t
    print(f"rating_metrics: {ours:.2f} s; sklearn per resample: {naive:.2f} s; ratio {naive / ours:.1f}x")


if __name__ == "__main__":
    main()
