"""Connection rules that exclude repeats: sampling each target's sources without replacement.

The rule alone (``Rule.connections`` on id arrays, one seeded stream), no
network and no engine: pure NumPy, nothing to compile.

Cases (sources, targets, in-degree, whether the targets are the sources):

* ``all``: n = k = 1,000, every source once per target (1 M connections);
* ``all_but_self``: 1,000 neurons onto themselves, k = 999 without autapses;
* ``half``: 10,000 sources, 1,000 targets, k = 5,000, the most redraws;
* ``sparse``: 20,000 neurons onto themselves, k = 500 (10 M connections).
"""

import numpy as np

from eventsim.connectivity import FixedInDegree, FixedProbability
from eventsim.rng import generator

#: case -> (n_pre, n_post, k, recurrent)
IN_DEGREE_CASES = {
    "all": (1000, 1000, 1000, False),
    "all_but_self": (1000, 1000, 999, True),
    "half": (10_000, 1000, 5000, False),
    "sparse": (20_000, 20_000, 500, True),
}


def _ids(n_pre, n_post, recurrent):
    pre = np.arange(n_pre, dtype=np.int64)
    post = pre[:n_post].copy() if recurrent else np.arange(n_pre, n_pre + n_post, dtype=np.int64)
    return pre, post


class FixedInDegreeWithoutMultapses:
    """``FixedInDegree(k, allow_multapses=False)``: k distinct sources per target."""

    params = [list(IN_DEGREE_CASES)]
    param_names = ["case"]
    number = 1
    repeat = (1, 5, 30.0)
    warmup_time = 0.0
    timeout = 300

    def setup(self, case):
        n_pre, n_post, k, recurrent = IN_DEGREE_CASES[case]
        self.pre_ids, self.post_ids = _ids(n_pre, n_post, recurrent)
        self.rule = FixedInDegree(k, allow_multapses=False)

    def _connect(self):
        return self.rule.connections(self.pre_ids, self.post_ids, generator(1, 2, 0))

    def time_connections(self, case):
        self._connect()

    def peakmem_connections(self, case):
        self._connect()


class FixedProbabilityDense:
    """``FixedProbability(p)`` between 2,000 neurons and themselves, up to every pair."""

    params = [[0.1, 0.5, 0.9, 1.0]]
    param_names = ["p"]
    number = 1
    repeat = (1, 5, 30.0)
    warmup_time = 0.0
    timeout = 300

    def setup(self, p):
        self.pre_ids, self.post_ids = _ids(2000, 2000, True)
        self.rule = FixedProbability(p)

    def time_connections(self, p):
        self.rule.connections(self.pre_ids, self.post_ids, generator(1, 2, 0))
