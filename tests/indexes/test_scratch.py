"""indexes._scratch.ScratchPool: buffers are reused, never shared, dropped after an error."""

from __future__ import annotations

import numpy as np
import pytest

from indexes._scratch import ScratchPool


def test_buffers_are_reused_per_size_and_never_handed_out_twice():
    pool = ScratchPool(keep=2, keys=2)
    with pool.take(("acc", 10), np.float32) as a, pool.take(("acc", 10), np.float32) as b:
        assert a is not b and a.shape == (10,) and a.dtype == np.float32 and not a.any()
    with pool.take(("acc", 10), np.float32) as c:
        assert c is a or c is b
    with pool.take(("acc", 20), np.float32) as d:  # another segment size: both kept
        pass
    with pool.take(("acc", 10), np.float32) as e:
        assert e is a or e is b
    with pool.take(("touched", 5), np.int32):  # a third key: the least recent ("acc", 20) goes
        pass
    with pool.take(("acc", 20), np.float32) as f:
        assert f is not d
    with pytest.raises(RuntimeError), pool.take(("acc", 10), np.float32) as g:
        raise RuntimeError("kernel failed")  # g may be dirty: not returned
    with pool.take(("acc", 10), np.float32) as h, pool.take(("acc", 10), np.float32) as i:
        assert g is not h and g is not i
