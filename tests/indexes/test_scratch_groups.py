"""ScratchPool.get_group: buffers taken together under one key are reused together, never
handed out twice, and dropped when not put back (a kernel that raised)."""

from __future__ import annotations

import numpy as np

from indexes._scratch import ScratchPool

SIZES = ((12, np.float32), (5, np.int32))


def test_groups_are_zeroed_reused_and_never_shared():
    pool = ScratchPool(keep=2, keys=4)
    a = pool.get_group(("g", 12, 5), SIZES)
    b = pool.get_group(("g", 12, 5), SIZES)
    assert [x.shape for x in a] == [(12,), (5,)] and [x.dtype for x in a] == [np.float32, np.int32]
    assert not any(x.any() for x in a) and a[0] is not b[0] and a[1] is not b[1]
    pool.put(("g", 12, 5), a)
    pool.put(("g", 12, 5), b)
    c = pool.get_group(("g", 12, 5), SIZES)
    d = pool.get_group(("g", 12, 5), SIZES)
    assert {id(c), id(d)} == {id(a), id(b)}  # the same groups back, each to one caller
    e = pool.get_group(("g", 12, 5), SIZES)  # none left: a new group
    assert e is not a and e is not b
    pool.put(("g", 12, 5), c)  # d and e not put back (their kernel raised): dropped
    assert pool.get_group(("g", 12, 5), SIZES) is c
    f = pool.get_group(("g", 12, 5), SIZES)
    assert all(f is not g for g in (a, b, c, d, e))
