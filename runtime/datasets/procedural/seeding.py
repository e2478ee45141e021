"""``np.random.default_rng([a, b, c, i])`` for many ``i`` at once, without building a SeedSequence per sample.

Seeding a Generator from a list costs more than drawing one face's parameters. The seeding itself is cheap
arithmetic, so it is done here for a whole batch in numpy: NumPy's SeedSequence entropy mixing (pool of four
32-bit words) and PCG64's seeding steps, then one shared PCG64 is set to each sample's state in turn. The streams
are bit-identical to ``default_rng`` (checked by tests/test_procedural.py); entropy words outside 0..2**32-1, and
batches of fewer than four, use ``default_rng`` itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

_M32, _M128 = 0xFFFFFFFF, (1 << 128) - 1
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_PCG_MULT = (2549297995355413924 << 64) + 4865540595714422341


def _hash_constants(n: int) -> list[tuple[np.uint32, np.uint32]]:
    """(xor constant, multiplier) of NumPy's ``hashmix`` for its first ``n`` calls (they depend on no data)."""
    h, out = _INIT_A, []
    for _ in range(n):
        nxt = (h * _MULT_A) & _M32
        out.append((np.uint32(h), np.uint32(nxt)))
        h = nxt
    return out


_HASH = _hash_constants(16)  # 4 to fill the pool + 12 to mix it


def pcg64_states(words: np.ndarray) -> list[tuple[int, int]]:
    """PCG64 ``(state, inc)`` of ``default_rng(list(row))`` for each row of four 32-bit entropy words (N, 4)."""
    e = np.asarray(words, np.uint64).astype(np.uint32)
    sh = np.uint32(16)
    consts = iter(_HASH)

    def hashmix(v: np.ndarray) -> np.ndarray:
        x, m = next(consts)
        v = (v ^ x) * m
        return v ^ (v >> sh)

    with np.errstate(over="ignore"):
        pool = [hashmix(e[:, k]) for k in range(4)]
        for src in range(4):
            for dst in range(4):
                if src != dst:
                    r = np.uint32(_MIX_L) * pool[dst] - np.uint32(_MIX_R) * hashmix(pool[src])
                    pool[dst] = r ^ (r >> sh)
        h, out = _INIT_B, []
        for k in range(8):  # generate_state(4, uint64): eight 32-bit words, pairs little-endian
            h2 = (h * _MULT_B) & _M32
            v = (pool[k % 4] ^ np.uint32(h)) * np.uint32(h2)
            out.append(v ^ (v >> sh))
            h = h2
    w = np.stack(out, 1).astype(np.uint64)
    w64 = (w[:, 0::2] | (w[:, 1::2] << np.uint64(32))).tolist()
    states = []
    for s0, s1, i0, i1 in w64:  # pcg64_set_seed: state 0, one step, add the seed, one step
        inc = ((((i0 << 64) | i1) << 1) | 1) & _M128
        state = ((inc + ((s0 << 64) | s1)) * _PCG_MULT + inc) & _M128
        states.append((state, inc))
    return states


def generators(prefix: Sequence[int], indices: Sequence[int]) -> Iterator[np.random.Generator]:
    """For each ``i`` in ``indices``, a Generator in the state of ``np.random.default_rng([*prefix, i])``.

    One Generator is re-seeded for every item: use each before asking for the next.
    """
    words = np.array([[*prefix, i] for i in indices], np.int64).reshape(len(indices), len(prefix) + 1)
    if len(indices) < 4 or len(prefix) != 3 or words.min() < 0 or words.max() > _M32:  # few: numpy's own is faster
        for i in indices:
            yield np.random.default_rng([*prefix, i])
        return
    bitgen = np.random.PCG64(0)
    gen = np.random.Generator(bitgen)
    for state, inc in pcg64_states(words):
        bitgen.state = {"bit_generator": "PCG64", "state": {"state": state, "inc": inc}, "has_uint32": 0, "uinteger": 0}
        yield gen
