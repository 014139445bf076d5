"""Suite-wide settings.

* One torch thread per test process (the suite runs under pytest-xdist on small machines; oversubscribed
  threads make small-network tests many times slower).
* Hypothesis is derandomised by default (profile ``seqmarl-ci``: a red run reproduces exactly, no example
  database); ``HYPOTHESIS_PROFILE=seqmarl-explore`` turns random exploration back on for bug hunting.
"""

import os

import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(1)

settings.register_profile("seqmarl-ci", derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("seqmarl-explore", derandomize=False, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "seqmarl-ci"))
