"""Re-implementations of other projects' re-ranking and metric functions, for benchmarks/rerank_bench.py --peers.

Each module is written for this benchmark from the published algorithm of one project (named in its docstring,
with the version read); the array dtypes, the dense (N, N) arrays and the per-row loops are kept as published,
because they decide time, memory and precision, which is what the benchmark compares.
"""
