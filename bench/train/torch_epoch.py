#!/usr/bin/env python3
"""One epoch of seed-cnn on MNIST (batch 32, Adam) in PyTorch, for comparison
with edgesplit's trainer (see run.sh). Reads the same IDX files.

usage: torch_epoch.py MNIST_DATA_DIR THREADS [LIMIT]
"""
import gzip
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def idx(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def main():
    d, threads = sys.argv[1], int(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 and int(sys.argv[3]) > 0 else None
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    x = torch.from_numpy(idx(d + "/train-images-idx3-ubyte.gz")[:limit].astype(np.float32) / 255).unsqueeze(1)
    y = torch.from_numpy(idx(d + "/train-labels-idx1-ubyte.gz")[:limit].astype(np.int64))
    xt = torch.from_numpy(idx(d + "/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
    yt = torch.from_numpy(idx(d + "/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(32 * 13 * 13, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    perm = torch.randperm(n)
    start = time.perf_counter()
    total = 0.0
    for i in range(0, n, 32):
        b = perm[i:i + 32]
        opt.zero_grad()
        loss = loss_fn(model(x[b]), y[b])
        loss.backward()
        opt.step()
        total += loss.item() * len(b)
    el = time.perf_counter() - start
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    print("pytorch threads=%d images=%d epoch_s=%.3f images_per_s=%.0f loss=%.4f test_acc=%.4f torch=%s"
          % (threads, n, el, n / el, total / n, acc, torch.__version__))


if __name__ == "__main__":
    main()
