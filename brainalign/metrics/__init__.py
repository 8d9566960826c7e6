"""Metrics: pure functions over arrays that compare model and brain representations."""

from brainalign.metrics.cka import cka
from brainalign.metrics.rsa import compare_rdms, pool_rdms, rdm, rsa_noise_ceiling, upper

__all__ = ["compare_rdms", "pool_rdms", "rdm", "rsa_noise_ceiling", "upper"]
__all__ += ["cka"]
