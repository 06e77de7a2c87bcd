"""Models: every family registers itself in ``MODELS`` when its module is imported."""

from reco_core.models.base import MODELS, Context, ModelSpec, Scorer, get_spec, make_model, register

__all__ = ["MODELS", "Context", "ModelSpec", "Scorer", "get_spec", "make_model", "register"]
