"""``--verify`` and the accuracy benchmarks: the estimate against autograd."""
