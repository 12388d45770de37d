"""Compiled kernels, below the models: `cpu` (Numba: the SGD step of negative sampling and hierarchical softmax, DeferredAdam's row work),
`sequential` (word2vec's sequential SGD in shards of a batch), `prefetch` (the CPU kernels' software prefetch), `sgns_triton` (the GPU's fused SGNS epoch over a corpus held on the device), and what the GPU path
draws its samples with (`counter_rng`, `device_sampling`). Nothing here imports Lightning or the models."""
