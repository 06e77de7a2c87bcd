"""Scale-out engine on Apache Spark: the local engine's block function over partitions of users.

``import reco_core`` never imports this package, and importing it does not import pyspark: ``spark_command``
and the summary JSON (``write_summary``/``read_summary``) work without Spark, for the dashboard. The engine
itself (``evaluate``, ``fuse``, ``spark_session``) loads pyspark on first use. docs/scale-out.md tells the whole
story: how to run it, what runs where, and the measured figures.
"""

from __future__ import annotations

from typing import Any

from reco_core.spark.summary import SUMMARY_VERSION, read_summary, spark_command, summary_dict, write_summary

__all__ = [
    "SUMMARY_VERSION",
    "evaluate",
    "fuse",
    "read_summary",
    "spark_command",
    "spark_session",
    "summary_dict",
    "write_summary",
]

_LAZY = {
    "evaluate": "reco_core.spark.api",
    "fuse": "reco_core.spark.api",
    "spark_session": "reco_core.spark.session",
    "SparkError": "reco_core.spark.session",
    "SparkRun": "reco_core.spark.engine",
}


def __getattr__(name: str) -> Any:
    # pyspark (and a JVM) only when the engine is actually used.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reco_core.spark' has no attribute {name!r}")
