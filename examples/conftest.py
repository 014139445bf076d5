# The one line a user's conftest needs for seqmarl's hypothesis profiles (HYPOTHESIS_PROFILE=... overrides it):
from seqmarl.testing import load_profile; load_profile("seqmarl-ci")  # noqa: E702
