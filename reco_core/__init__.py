"""Reco Fusion Lab engine: load -> split -> fit members -> score -> fuse -> rank -> evaluate.

Never imports streamlit; the dashboard is a thin face over this package.
"""

__version__ = "0.1.0"
