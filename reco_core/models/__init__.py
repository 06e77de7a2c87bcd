"""Models: every family registers itself in ``MODELS`` when its module is imported."""

# Each family registers itself in MODELS on import.
from reco_core.models import content, ease, hybrid, implicit_models, knn, mf, neural, popularity, text  # noqa: F401
from reco_core.models.base import MODELS, Context, ModelSpec, Scorer, get_spec, make_model, register

__all__ = ["MODELS", "Context", "ModelSpec", "Scorer", "get_spec", "make_model", "register"]
