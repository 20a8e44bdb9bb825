"""Reference values for gpu-service/src/diffusion/rng/philox.ts.

Restates AUTOMATIC1111's modules/rng_philox.py algorithm in NumPy (same dtypes and operation
order: uint64 products split into 32-bit halves, float64 Box-Muller from float32 scale constants)
and prints the first values of a few draws as JSON. Run: python3 philox-reference.py
The output is pasted into philox.test.ts; this script is not run by the test suite.
"""
import json

import numpy as np

PHILOX_M = [0xD2511F53, 0xCD9E8D57]
PHILOX_W = [0x9E3779B9, 0xBB67AE85]
TWO_POW32_INV = np.array([2.3283064e-10], dtype=np.float32)
TWO_POW32_INV_2PI = np.array([2.3283064e-10 * 6.2831855], dtype=np.float32)


def halves(x):
    """uint64 array -> (low 32 bits, high 32 bits) as uint32 arrays (little-endian view)."""
    return x.view(np.uint32).reshape(-1, 2).transpose(1, 0)


def philox_round(counter, key):
    v1 = halves(counter[0].astype(np.uint64) * PHILOX_M[0])
    v2 = halves(counter[2].astype(np.uint64) * PHILOX_M[1])
    counter[0] = v2[1] ^ counter[1] ^ key[0]
    counter[1] = v2[0]
    counter[2] = v1[1] ^ counter[3] ^ key[1]
    counter[3] = v1[0]


def philox4x32_10(counter, key):
    for _ in range(9):
        philox_round(counter, key)
        key[0] += PHILOX_W[0]
        key[1] += PHILOX_W[1]
    philox_round(counter, key)
    return counter


def randn(seed, offset, n):
    counter = np.zeros((4, n), dtype=np.uint32)
    counter[0] = offset
    counter[2] = np.arange(n, dtype=np.uint32)
    key = halves(np.full(n, seed, dtype=np.uint64))
    g = philox4x32_10(counter, key)
    u = g[0] * TWO_POW32_INV + TWO_POW32_INV / 2
    v = g[1] * TWO_POW32_INV_2PI + TWO_POW32_INV_2PI / 2
    return (np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32)


cases = []
for seed in [0, 42, 2**32 + 5, 2**53 - 1, 2**53 + 1, 2**64 - 1]:
    for offset in [0, 1]:
        values = randn(seed, offset, 4096)
        cases.append({
            "seed": seed if seed <= 2**53 - 1 else str(seed),
            "call": offset,
            "first": [float(x) for x in values[:8]],
            "last": [float(x) for x in values[-4:]],
            "sum": float(values.astype(np.float64).sum()),
        })
print(json.dumps(cases))
