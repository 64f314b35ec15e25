"""Differentiable accelerator cost model fitted on mapper labels.

``Surrogate.load(template_or_path).predict(layer_feats, accel_probs) -> (energy_pJ, cycles)``;
``layer_features(problem)`` builds the layer rows; ``fit_surrogate(...)`` labels, fits and reports.
"""
from .features import FEATURE_NAMES, NUM_FEATURES, layer_features
from .model import SURROGATE_DIR, Surrogate


def fit_surrogate(*args, **kwargs):
    """See :func:`a3cs_plugin.hardware.surrogate.fit.fit_surrogate`."""
    from .fit import fit_surrogate as _fit
    return _fit(*args, **kwargs)


__all__ = ["Surrogate", "layer_features", "fit_surrogate", "FEATURE_NAMES", "NUM_FEATURES",
           "SURROGATE_DIR"]
