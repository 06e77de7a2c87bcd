"""Fusion of several members' scores or top-N lists into one ranking.

Everything goes through one entry point, :func:`fuse`. Methods and normalisers live in registries
(``METHODS``, ``NORMALISERS``); each is a pure function over arrays, vectorised over users.

Conventions (docs/fusion.md gives formulas and worked examples):

* **Weights** are non-negative, finite, not all zero, one per member; they are divided by their sum
  before use (no method's ranking depends on their scale). A member with weight 0 has no effect at all:
  it is dropped before fusing, exactly as if it were not there (it still gets a column of zero
  contributions, so explanations keep one column per member).
* **Score blocks** are float32 ``[n_users, n_items]`` *already masked*: training items are ``-inf``
  (``ranking.mask_rows``) and NaN means "cannot score". Normalisers treat every non-finite cell as
  *absent*: it does not enter a row's min, max, mean, std or ranks, and it stays absent (NaN) after
  normalising. So excluded training items never influence a row's normalisation.
* **Top-N lists** are :class:`~reco_core.ranking.Ranking` objects from ``ranking.top_k`` with training
  items excluded (padding -1/NaN at the end). Result-level methods see only these lists; an item that
  no (positively weighted) member lists cannot be recommended by them.
* **Ties** in a fused score go to the lower item index (the ranker's rule), except where a method
  says otherwise (``vote``; interleaving has no scores).

Modules, one idea each: ``normalisers`` (``NORMALISERS`` and the normalised member blocks), ``inputs``
(what a method is given and returns; candidate sets), ``score_methods`` (wsum, vote), ``list_methods``
(rrf, borda, combsum, combmnz), ``interleaving`` (round robin, team draft), ``registry`` (``METHODS``),
``core`` (``fuse``, ``fused_scores``, ``FusionResult``, the checks) and ``scorer`` (``FusedScorer``).
Import from the package: every public name is re-exported here.
"""

# Every public name of the single-module fusion.py this package replaced. ``X as X`` re-exports a public
# helper that was not in ``__all__`` then either (``fusion.share_of_sum``, the normaliser functions, ...).
from reco_core.fusion.core import DEFAULT_TOP_N, FusionResult, check_weights, fuse, fused_scores
from reco_core.fusion.core import share_of_sum as share_of_sum
from reco_core.fusion.normalisers import (
    NORMALISERS,
    NormalisedScores,
    NormaliserSpec,
    check_normaliser,
    normalise,
    normalise_members,
)
from reco_core.fusion.normalisers import Normaliser as Normaliser
from reco_core.fusion.normalisers import normalise_minmax as normalise_minmax
from reco_core.fusion.normalisers import normalise_none as normalise_none
from reco_core.fusion.normalisers import normalise_rank as normalise_rank
from reco_core.fusion.normalisers import normalise_zscore as normalise_zscore
from reco_core.fusion.registry import METHODS, FusionMethod, check_method, register_method, unregister_method
from reco_core.fusion.registry import Level as Level
from reco_core.fusion.scorer import FusedConfig, FusedScorer

__all__ = [
    "DEFAULT_TOP_N",
    "METHODS",
    "NORMALISERS",
    "FusedConfig",
    "FusedScorer",
    "FusionMethod",
    "FusionResult",
    "NormalisedScores",
    "NormaliserSpec",
    "check_method",
    "check_normaliser",
    "check_weights",
    "fuse",
    "fused_scores",
    "normalise",
    "normalise_members",
    "register_method",
    "unregister_method",
]
