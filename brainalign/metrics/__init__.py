"""Metrics: pure functions over arrays that compare model and brain representations."""

from brainalign.metrics.encoding import (
    EncodingScore,
    encoding_ceiling,
    encoding_score,
    make_splits,
    normalise,
    pearson_columns,
)
from brainalign.metrics.estimators import DEFAULT_ALPHAS, PLSRegression, RidgeCV
from brainalign.metrics.reliability import spearman_brown, split_half_reliability
from brainalign.metrics.rsa import compare_rdms, pool_rdms, rdm, rsa_noise_ceiling, upper

__all__ = ["compare_rdms", "pool_rdms", "rdm", "rsa_noise_ceiling", "upper"]
__all__ += ["DEFAULT_ALPHAS", "EncodingScore", "PLSRegression", "RidgeCV", "encoding_ceiling", "encoding_score",
            "make_splits", "normalise", "pearson_columns", "spearman_brown", "split_half_reliability"]
