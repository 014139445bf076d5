"""Suite-wide settings.

* One torch thread per test process (the suite runs under pytest-xdist on small machines; oversubscribed
  threads make small-network tests many times slower).
* Hypothesis is derandomised by default: the package's profile ``seqmarl-ci`` (a red run reproduces exactly, no
  example database), loaded by the same one-liner a user's conftest uses; ``HYPOTHESIS_PROFILE=seqmarl-explore``
  turns random exploration back on for bug hunting, ``HYPOTHESIS_PROFILE=seqmarl-thorough`` tries 10x the examples.
* The ``pytester`` fixture (tests/plugin run pytest sessions in-process).
"""

import torch

from seqmarl.testing import load_profile

pytest_plugins = ["pytester"]

torch.set_num_threads(1)

load_profile("seqmarl-ci")
