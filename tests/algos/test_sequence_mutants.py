"""Tests written for surviving mutants of the ``sequence`` mutation area (tools/mutate.py: MAT/MAT-Dec, the AR-MAPPO
actor, TAD's coordinators and TAD-PPO): each names the mutant it kills and checks the behaviour against an exact
computation."""

from __future__ import annotations
