"""The dashboard's shared layer: Streamlit glue between the widgets and the engine (``reco_core``).

Every page starts the same way (``ui.page.start``: page config, the shared sidebar, the heading, the lab)::

    from reco_core.errors import RecoError
    from ui import lab, page
    from ui.widgets import show_error

    cfg, current = page.start("Title", "caption", get_lab=lab.get_lab)   # no config or no lab: says why, stops
    try:
        result = lab.current_result(current, cfg)   # re-fuse only: weights, method, normaliser, k
    except RecoError as exc:               # e.g. all weights zero: one line, never a traceback
        show_error(exc)

A page that can draw something without a lab calls ``cfg, _ = page.start("Title")`` and handles
``cfg is None`` itself. The analyses the pages draw live in the engine (``reco_core.analysis``).

Modules and their public API:

- ``ui.state``: the only place that knows widget, URL and session keys.
  ``LabConfig`` is the engine's ``reco_core.config.ExperimentConfig(protocol, members, weights, fusion)``
  (frozen; ``cfg.method`` / ``cfg.normaliser`` / ``cfg.k`` read its ``FusionSpec``, ``cfg.fusion.param(name)``
  a method's declared parameter) with ``labels``, ``weight_map``, ``shares``, ``all_zero``, ``describe()``,
  ``with_weights()``, ``with_fusion()``, ``to_json(extra)``; the dashboard adds ``config_from_json(text)``
  (the engine's ``loads`` plus ``check_for_dashboard``: what the widgets can hold),
  ``to_query_params(cfg)`` / ``config_from_query_params(params, uploaded)``,
  ``widget_values(cfg)`` / ``config_from_values(values)``; ``UploadedData(dataset, content_hash, name)``
  with ``set_uploaded(dataset, content_hash, name, select=True)`` / ``get_uploaded()`` /
  ``clear_uploaded()`` (session key ``UPLOAD_KEY``); ``queue_config(cfg, notice)`` /
  ``queue_weights({model or label: w}, notice)`` move the sidebar on the next run (call them from a
  widget callback, or call ``st.rerun()`` after); ``set_notice(msg)`` shows one message in the sidebar;
  ``last_config()`` / ``last_protocol()``; ``remember(page, name, value)`` / ``recall(page, name)``
  for a page's own session values; ``keep_across_pages(keys, st.query_params)`` for a page's own
  URL-bound widgets.
- ``ui.sidebar``: ``render() -> LabConfig | None``: data and protocol (a form), members by kind,
  one weight slider per member, fusion method / normaliser / the method's declared parameters (from
  ``fusion.METHODS[m].params``) / k, a settings form per member,
  a "link to this view" (drawn only while its expander is open). Widgets are keyed, bound to the URL and kept
  across pages.
- ``ui.lab``: ``get_lab(cfg, progress_container=None) -> Lab`` (test part) and ``validation_lab(cfg)``
  (members refitted on train minus validation, session on validation); ``current_result(lab, cfg) ->
  LiveResult``; ``get_dataset(protocol)``; ``Lab`` (dataset, split, ctx, session, ``members``,
  ``failed``, ``weights_for(cfg)``, ``lock`` to hold while calling the shared session); the lab's analyses
  under its lock: ``metric_table``, ``member_evaluations``, ``ablation_table`` (the rest are called from
  ``reco_core.analysis`` directly); ``recommendations_csv`` (formula-safe), ``sweep(lab, cfg, step)``;
  one user: ``user_view(lab, cfg, user_index)``, ``profile_view(lab, cfg, items, ratings, text)`` (both give
  a ``reco_core.analysis.UserView``); ``history`` / ``activity`` / ``item_frame``.
- ``ui.page``: ``start(title, caption="", *, heading=None, get_lab=None, no_config=..., on_stop=None)
  -> (LabConfig | None, Lab | None)``: what every page calls first; ``live(cfg, draw)``: the page's live part, a
  fragment that a weight, normaliser, k or method-parameter change reruns alone (with the sidebar's shares and
  link); ``fused(lab, cfg, then="")``: the current result or None with one message (all-zero weights: a warning).
- ``ui.tiles``: fixed-width metric tiles that wrap to the window (``grid``, ``tile``), ``delta`` (no arrow below
  the display's precision), the session's ``History`` of configurations, ``jargon`` (plain lines for ILD, ARP,
  Gini, novelty).
- ``ui.cached``: every cache, bounded: ``stores()`` (one ``st.cache_resource`` holding LRU
  ``BoundedStore``s of datasets, splits, contexts, members, sessions, sweeps; emptied by
  ``st.cache_resource.clear()``), ``overview_stats`` (``st.cache_data``).
- ``ui.charts``: plotly builders with titles, axis labels and hover text (``per_user_distribution``,
  ``per_user_difference``, ``overlap_heatmap``, ``share_bars``, ``segment_bars``, ``contribution_bars``,
  ``score_curves``, ``tradeoff_scatter``), ``metric_label(key)``, ``higher_is_better(key)``,
  ``relative_to_best``, ``colour_map``, and ``show(fig, alt, caption, **plotly_chart_kwargs)`` which draws a
  figure with its accessible description.
- ``ui.vega_charts``: Vega-Lite charts where a light chart matters (``VegaChart(data, spec)``): the Overview's
  ``rating_histogram``, ``long_tail``, ``user_activity``, ``genre_bars`` (a new session's first view loads no
  Plotly) and ``metric_bars`` (members against the fusion, redrawn at every key press), with ``show(chart, alt,
  caption)``.
- ``ui.widgets``: hyperparameter inputs and forms built from ``ModelConfig.params()``, ``BOUND`` (the
  bind/persist arguments of every shared widget) and ``show_error(exc)`` (escaped one-line st.error).

Streamlit 1.67 notes (checked in a real browser): ``bind="query-params"`` and
``persist_state="session"`` exist; a value that only came from a shared link is dropped by the first
page link, which ``state.keep_across_pages`` repairs; ``st.tabs(..., on_change="rerun")`` exposes
``tab.open`` so pages compute only the open tab, and ``st.expander(..., key=..., on_change="rerun")``
gives ``.open`` the same way (``widgets.lazy_expander``: the Fusion Lab's History and Run-at-scale, the
sidebar's link); ``st.plotly_chart(on_select=callback, selection_mode="points")`` gives the clicked points
(with their ``customdata``).
"""
