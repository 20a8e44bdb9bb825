#!/usr/bin/env python3
"""Expected float32 values of ggml block dequantization, for test/weights/gguf-dequant.test.ts.

Run once at test-authoring time (python3 with numpy; the tests themselves never run Python):

    python3 test/weights/gguf-dequant/make_expected.py > test/weights/gguf-dequant/expected.json

For every ggml type the engine decodes, a few blocks of seeded random bytes (block scales drawn as ordinary
float16 values so no block is inf/NaN, plus a block with a negative and one with a subnormal scale) are decoded
by a vectorised numpy restatement of gguf-py's `gguf/quants.py` `dequantize_blocks` (llama.cpp gguf-py 0.19; Q8_K,
which gguf-py does not implement, after ggml's `dequantize_row_q8_K`). The output is deterministic: the bytes as
hex and the expected values as float32 bit patterns (hex), so the comparison is bit-exact.
"""
import json
import numpy as np

QK_K = 256
# (values per block, bytes per block), ggml-common.h / gguf-py GGML_QUANT_SIZES
SIZES = {
    "F16": (1, 2), "BF16": (1, 2),
    "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22), "Q5_1": (32, 24), "Q8_0": (32, 34),
    "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144), "Q5_K": (256, 176), "Q6_K": (256, 210), "Q8_K": (256, 292),
}
# Byte offsets of the float16 scale fields in each block (d, m / dmin), from the ggml block structs.
HALF_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
}


def f16(b):
    return b.view(np.float16).astype(np.float32)


def nibbles(qs, width):
    """(n, k) bytes -> (n, 2k): the low nibbles of each `width`-byte run, then its high nibbles."""
    n = qs.shape[0]
    q = qs.reshape((n, -1, 1, width)) >> np.array([0, 4], dtype=np.uint8).reshape((1, 1, 2, 1))
    return (q & np.uint8(0x0F)).reshape((n, -1))


def bits_of(qh, count):
    """(n, 4) bytes as a little-endian uint32 -> (n, count) bits 0..count-1."""
    v = qh.copy().view(np.uint32).reshape((-1, 1)) >> np.arange(count, dtype=np.uint32).reshape((1, count))
    return (v & np.uint32(1)).astype(np.uint8)


def q4_0(b):
    d = f16(b[:, :2])
    return d * (nibbles(b[:, 2:], 16).astype(np.int8) - np.int8(8)).astype(np.float32)


def q4_1(b):
    d, m = f16(b[:, :2]), f16(b[:, 2:4])
    return d * nibbles(b[:, 4:], 16).astype(np.float32) + m


def q5_0(b):
    d = f16(b[:, :2])
    q = nibbles(b[:, 6:], 16) | (bits_of(b[:, 2:6], 32) << np.uint8(4))
    return d * (q.astype(np.int8) - np.int8(16)).astype(np.float32)


def q5_1(b):
    d, m = f16(b[:, :2]), f16(b[:, 2:4])
    q = nibbles(b[:, 8:], 16) | (bits_of(b[:, 4:8], 32) << np.uint8(4))
    return d * q.astype(np.float32) + m


def q8_0(b):
    return b[:, 2:].view(np.int8).astype(np.float32) * f16(b[:, :2])


def q2_k(b):
    n = b.shape[0]
    scales, qs = b[:, :16], b[:, 16:80]
    d, dmin = f16(b[:, 80:82]), f16(b[:, 82:84])
    dl = (d * (scales & 0xF).astype(np.float32)).reshape((n, 16, 1))
    ml = (dmin * (scales >> 4).astype(np.float32)).reshape((n, 16, 1))
    q = (qs.reshape((n, -1, 1, 32)) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape((1, 1, 4, 1))) & np.uint8(3)
    return (dl * q.reshape((n, 16, 16)).astype(np.float32) - ml).reshape((n, -1))


def q3_k(b):
    n = b.shape[0]
    hmask, qs, scales, d = b[:, :32], b[:, 32:96], b[:, 96:108], f16(b[:, 108:110])
    low = (scales[:, :8].reshape((n, 1, 8)) >> np.array([0, 4], dtype=np.uint8).reshape((1, 2, 1))).reshape((n, 16))
    high = (scales[:, 8:].reshape((n, 1, 4)) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape((1, 4, 1))).reshape((n, 16))
    sc = ((low & np.uint8(0x0F)) | ((high & np.uint8(3)) << np.uint8(4))).astype(np.int8) - np.int8(32)
    dl = (d * sc.astype(np.float32)).reshape((n, 16, 1))
    ql = (qs.reshape((n, -1, 1, 32)) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape((1, 1, 4, 1))).reshape((n, 16, 16)) & np.uint8(3)
    qh = (hmask.reshape((n, -1, 1, 32)) >> np.arange(8, dtype=np.uint8).reshape((1, 1, 8, 1))).reshape((n, 16, 16)) & np.uint8(1)
    q = (ql.astype(np.int8) - ((qh ^ np.uint8(1)) << np.uint8(2)).astype(np.int8)).astype(np.float32)
    return (dl * q).reshape((n, QK_K))


def scale_min_k4(s):
    n = s.shape[0]
    s = s.reshape((n, 3, 4))
    d, m, md = s[:, 0:1, :], s[:, 1:2, :], s[:, 2:3, :]
    sc = np.concatenate([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], axis=-1)
    mn = np.concatenate([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return sc.reshape((n, 8)), mn.reshape((n, 8))


def q4_k(b):
    n = b.shape[0]
    d, dmin = f16(b[:, :2]), f16(b[:, 2:4])
    sc, mn = scale_min_k4(b[:, 4:16])
    dd = (d * sc.astype(np.float32)).reshape((n, -1, 1))
    dm = (dmin * mn.astype(np.float32)).reshape((n, -1, 1))
    q = nibbles(b[:, 16:], 32).reshape((n, -1, 32)).astype(np.float32)
    return (dd * q - dm).reshape((n, QK_K))


def q5_k(b):
    n = b.shape[0]
    d, dmin = f16(b[:, :2]), f16(b[:, 2:4])
    sc, mn = scale_min_k4(b[:, 4:16])
    qh, qs = b[:, 16:48], b[:, 48:]
    dd = (d * sc.astype(np.float32)).reshape((n, -1, 1))
    dm = (dmin * mn.astype(np.float32)).reshape((n, -1, 1))
    ql = nibbles(qs, 32).reshape((n, -1, 32))
    hi = (qh.reshape((n, -1, 1, 32)) >> np.arange(8, dtype=np.uint8).reshape((1, 1, 8, 1))) & np.uint8(1)
    q = (ql | (hi.reshape((n, -1, 32)) << np.uint8(4))).astype(np.float32)
    return (dd * q - dm).reshape((n, QK_K))


def q6_k(b):
    n = b.shape[0]
    ql, qh, scales, d = b[:, :128], b[:, 128:192], b[:, 192:208], f16(b[:, 208:210])
    dd = (d * scales.view(np.int8).astype(np.float32)).reshape((n, 16, 1))
    lo = (ql.reshape((n, -1, 1, 64)) >> np.array([0, 4], dtype=np.uint8).reshape((1, 1, 2, 1))) & np.uint8(0x0F)
    hi = (qh.reshape((n, -1, 1, 32)) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape((1, 1, 4, 1))) & np.uint8(3)
    q = (lo.reshape((n, -1, 32)) | (hi.reshape((n, -1, 32)) << np.uint8(4))).astype(np.int8) - np.int8(32)
    return (dd * q.reshape((n, 16, -1)).astype(np.float32)).reshape((n, QK_K))


def q8_k(b):
    d = b[:, :4].copy().view(np.float32)
    return d * b[:, 4:260].view(np.int8).astype(np.float32)


def plain_f16(b):
    return b.view(np.float16).astype(np.float32)


def plain_bf16(b):
    return (b.view(np.int16).astype(np.int32) << 16).view(np.float32)


DEQUANT = {"F16": plain_f16, "BF16": plain_bf16, "Q4_0": q4_0, "Q4_1": q4_1, "Q5_0": q5_0, "Q5_1": q5_1, "Q8_0": q8_0,
           "Q2_K": q2_k, "Q3_K": q3_k, "Q4_K": q4_k, "Q5_K": q5_k, "Q6_K": q6_k, "Q8_K": q8_k}


def blocks_for(name, rng):
    qk, size = SIZES[name]
    if qk == 1:
        # Plain types: 64 values of random bits, NaN/inf patterns replaced by ordinary values.
        raw = rng.integers(0, 256, size=(64 * size,), dtype=np.uint8)
        vals = DEQUANT[name](raw.copy())
        raw = np.where(np.repeat(np.isfinite(vals), size), raw, 0).astype(np.uint8)
        return raw.reshape((1, -1))
    # Blocks: ordinary scales, then one with negative scales, then one with float16-subnormal scales.
    n = 5 if qk == 32 else 3
    b = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    if name == "Q8_K":
        b[:, :4] = (rng.standard_normal(n).astype(np.float32) * 0.01).view(np.uint8).reshape((n, 4))
        b[n - 2, :4] = np.array([-0.5], dtype=np.float32).view(np.uint8)
        return b
    for j, at in enumerate(HALF_FIELDS[name]):
        scale = (np.abs(rng.standard_normal(n)) * (0.02 if j == 0 else 0.05) + 1e-4).astype(np.float16)
        scale[n - 2] = -scale[n - 2]
        scale[n - 1] = np.float16(3e-6)
        b[:, at:at + 2] = scale.view(np.uint8).reshape((n, 2))
    return b


def main():
    rng = np.random.default_rng(20240515)
    cases = []
    for name in SIZES:
        b = blocks_for(name, rng)
        out = DEQUANT[name](b.copy()).astype(np.float32).reshape(-1)
        assert np.all(np.isfinite(out)), name
        cases.append({
            "type": name,
            "bytes": b.tobytes().hex(),
            "values": len(out),
            "expected_f32_bits": out.view(np.uint32).tobytes().hex(),
        })
    json.dump({
        "generator": "test/weights/gguf-dequant/make_expected.py (numpy restatement of gguf-py gguf/quants.py dequantize_blocks; Q8_K after ggml dequantize_row_q8_K)",
        "numpy": np.__version__,
        "cases": cases,
    }, __import__("sys").stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
