"""Models: every family registers itself in ``MODELS`` when its module is imported."""

# Each family registers itself in MODELS on import.
from reco_core.models import ease, implicit_models, knn, popularity  # noqa: F401
from reco_core.models.base import MODELS, Context, ModelSpec, Scorer, get_spec, make_model, register

__all__ = ["MODELS", "Context", "ModelSpec", "Scorer", "get_spec", "make_model", "register"]
