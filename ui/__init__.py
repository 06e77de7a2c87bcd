"""The dashboard's shared layer: Streamlit glue between the widgets and the engine (``reco_core``).

Every page starts with::

    import streamlit as st
    from ui import sidebar
    st.set_page_config(page_title="...", layout="wide")
    cfg = sidebar.render()          # LabConfig | None (None: nothing to fuse; the sidebar says why)

Modules:

- ``ui.state``: ``LabConfig`` (protocol, members, weights, method, normaliser, k, rrf_k; ``to_json`` /
  ``from_json``, ``to_query_params`` / ``from_query_params``, ``describe()``, ``with_weights()``), the
  widget/URL keys, ``UploadedData`` and ``set_uploaded`` / ``get_uploaded`` / ``clear_uploaded`` for the
  "Your data" page, ``queue_config`` / ``queue_weights`` to move the sidebar from a page (then
  ``st.rerun()``, or call them from a widget callback), ``remember`` / ``recall`` for a page's own values.
- ``ui.sidebar``: ``render() -> LabConfig | None``.
- ``ui.widgets``: hyperparameter inputs and forms built from a model's ``ModelConfig.params()``.
"""
