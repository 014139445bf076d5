"""Suite-wide settings: one torch thread per test process (the suite runs under pytest-xdist on small
machines; oversubscribed threads make small-network tests many times slower)."""

import torch

torch.set_num_threads(1)
