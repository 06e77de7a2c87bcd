"""A SparkSession for the engine: Java and the master checked first, the JVM's log in a file, one-line errors.

``spark_session(master)`` is the only place that starts Spark. Before the JVM is launched (which takes
seconds and, with a wrong master, can retry for minutes) it checks in a few seconds that Java runs and that a
``spark://`` master answers, so either problem is one line naming the fix well within 30 s. The JVM's log4j
output goes to a file (``log_path``), never to the terminal; ``spark_errors`` turns any Spark/Py4J failure
into one ``SparkError`` line that names that file.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reco_core.errors import ConfigError, RecoError, quote

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[2]"
JAVA_FIX = (
    "install Java 17 (apt-get install -y openjdk-17-jre-headless, which `make test` and `make run` do) or point"
    " JAVA_HOME at one"
)
_LOCAL = re.compile(r"^local(\[(\d+|\*)(,\d+)?\])?$")
_CHECK_S = 10.0  # each pre-flight check; both together stay well under the 30 s promised


class SparkError(RecoError):
    """Spark could not start or a Spark job failed; the message names the log file with the details."""


def silence_pandas_warning() -> None:
    """pyspark 4.3 warns on every pandas conversion that it does not fully support pandas 3.

    The engine's own data passes through Arrow as numeric and string columns only, which the equality tests
    check against the local engine, so the warning carries no information here and would flood stderr.
    Only that one warning is silenced; any other stays visible.
    """
    warnings.filterwarnings("ignore", message=r"PySpark does not yet fully support pandas", category=FutureWarning)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)b?\s*$", re.IGNORECASE)


def spark_bytes(text: str, default: int) -> int:
    """A Spark size ("1g", "512m", "2gb", "1024") in bytes; plain numbers are bytes; ``default`` when unreadable."""
    found = _SIZE.match(str(text))
    if not found:
        return default
    power = " kmgtp".index(found.group(2).lower() or " ")
    return int(float(found.group(1)) * 1024**power)


def _driver_memory_set_elsewhere(given: Mapping[str, object]) -> bool:
    """Whether the person sized the driver: in ``conf``, spark-submit's arguments or spark-defaults.conf."""
    if "spark.driver.memory" in given or "spark.driver.maxResultSize" in given:
        return True
    submit = os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    if "--driver-memory" in submit or "spark.driver.memory" in submit:
        return True
    folders = [os.environ.get("SPARK_CONF_DIR", "")]
    if os.environ.get("SPARK_HOME"):
        folders.append(os.path.join(os.environ["SPARK_HOME"], "conf"))
    for folder in filter(None, folders):
        try:
            if "spark.driver.memory" in Path(folder, "spark-defaults.conf").read_text():
                return True
        except OSError:
            continue
    return False


def local_memory_conf(total_bytes: int | None = None) -> dict[str, str]:
    """``spark.driver.memory`` (a quarter of ``total_bytes``, the machine's memory by default, between 1 and 8 GB)
    and ``spark.driver.maxResultSize`` (half of it) for a local master."""
    if total_bytes is None:
        try:
            total_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total_bytes = 4 * 2**30
    mib = int(min(8 * 1024, max(1024, total_bytes // 4 // 2**20)))
    return {"spark.driver.memory": f"{mib}m", "spark.driver.maxResultSize": f"{mib // 2}m"}


def java_problem(timeout_s: float = _CHECK_S) -> str | None:
    """None when ``java -version`` runs (JAVA_HOME's java first, else the one on PATH); else why not."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        where = f"JAVA_HOME={quote(home)} has no bin/java" if home else "no java on PATH"
        return f"--engine spark needs Java and there is none ({where}): {JAVA_FIX}"
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"--engine spark needs Java and {java} -version failed ({type(exc).__name__}): {JAVA_FIX}"
    if done.returncode != 0:
        return f"--engine spark needs Java and {java} -version exited with {done.returncode}: {JAVA_FIX}"
    return None


def check_master(master: str, timeout_s: float = _CHECK_S) -> str:
    """``master`` as Spark takes it; local[N] checked, spark://host:port reached over TCP first.

    yarn, k8s://..., mesos://... are passed to Spark as given: only their own clients can check them.
    """
    text = str(master).strip()
    if not text:
        raise ConfigError("--spark-master is empty: give local[2], spark://host:7077, yarn or k8s://...")
    if text.startswith("local"):
        if not _LOCAL.match(text):
            raise ConfigError(f"--spark-master {quote(text)} is not valid: write local, local[N] or local[*]")
        return text
    if text.startswith("spark://"):
        for hostport in text.removeprefix("spark://").split(","):
            host, _, port = hostport.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"--spark-master {quote(text)} is not valid: write spark://host:port")
            try:
                with socket.create_connection((host, int(port)), timeout=timeout_s):
                    pass
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise SparkError(
                    f"cannot reach the Spark master {text} ({reason}): start the master, or fix --spark-master"
                    " (local[2] runs on this machine)"
                ) from None
        return text
    if text == "yarn" or re.match(r"^(k8s|mesos)://", text):
        return text
    raise ConfigError(
        f"--spark-master {quote(text)} is not valid: give local[2], spark://host:7077, yarn or k8s://https://host"
    )


def _log4j_file(log_path: Path) -> Path:
    """A log4j2 configuration that sends everything at INFO and above to ``log_path`` and nothing to the console."""
    conf = log_path.with_suffix(".log4j2.properties")
    conf.write_text(
        "rootLogger.level = info\n"
        "rootLogger.appenderRef.file.ref = file\n"
        "appender.file.type = File\n"
        "appender.file.name = file\n"
        f"appender.file.fileName = {log_path}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n\n"
    )
    return conf


def default_log_path() -> Path:
    folder = Path(os.environ.get("RECO_CACHE_DIR", Path(tempfile.gettempdir()) / "reco-fusion-lab")) / "spark-logs"
    folder.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkstemp(prefix="spark-", suffix=".log", dir=folder)[1])


def spark_session(
    master: str = DEFAULT_MASTER,
    app_name: str = "reco-fusion-lab",
    conf: Mapping[str, Any] | None = None,
    log_path: str | Path | None = None,
) -> SparkSession:
    """A SparkSession on ``master`` for the engine (or the running one, if a session already exists).

    Workers run this very Python (``PYSPARK_PYTHON = sys.executable``), so they import the same reco_core and
    the same numpy as the driver: the block code is the same code. The Spark UI is off (no port to bind) and
    Arrow is on (mapInPandas batches). ``conf`` adds or overrides Spark settings.
    """
    master = check_master(master)
    problem = java_problem()
    if problem:
        raise SparkError(problem)
    silence_pandas_warning()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # Workers must find reco_core even when the engine runs from a checkout that is not installed.
    root = str(Path(__file__).resolve().parents[2])
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    log = Path(log_path) if log_path is not None else default_log_path()
    log4j = _log4j_file(log)
    java_opts = f"-Dlog4j2.configurationFile=file:{log4j}"
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.driver.extraJavaOptions", java_opts)
        .config("spark.executor.extraJavaOptions", java_opts)
        .config("spark.executorEnv.PYTHONPATH", os.environ["PYTHONPATH"])
        .config("spark.python.worker.reuse", "true")
    )
    given: dict[str, object] = dict(conf or {})
    if _LOCAL.match(master) and not _driver_memory_set_elsewhere(given):
        # In local mode the driver's JVM is also every executor, and Spark's default of 1 GB is what a
        # 10M-interaction split collected for driver-fitted members (about 250 MB in Arrow) exceeded there. A
        # quarter of the machine's memory (at most 8 GB), unless the person sized it; a cluster's driver is
        # sized by spark-submit.
        given.update(local_memory_conf())
    for key, value in given.items():
        builder = builder.config(key, str(value))
    with spark_errors(log, "starting Spark"), _output_to(log):
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    _python_loggers_to(log)
    # Where this session's log is, for the one-line errors of later jobs.
    session.conf.set("reco.log_path", str(log))
    return session


@contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """File descriptors 1 and 2 point at ``log`` while the JVM is launched, so the JVM (which inherits them and
    keeps them) writes its banners and warnings there, never to the terminal; Python's own are restored after."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, "a", encoding="utf-8") as fh:
        try:
            os.dup2(fh.fileno(), 1)
            os.dup2(fh.fileno(), 2)
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _python_loggers_to(log: Path) -> None:
    """pyspark's own Python loggers (a failed query logs its whole JVM stack trace as JSON on stderr) write to
    the log file instead of the terminal; the error itself still reaches the caller as one line."""
    handler = logging.FileHandler(log, encoding="utf-8")
    for name in ("DataFrameQueryContextLogger", "PySparkLogger", "py4j"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False


def log_path_of(session: SparkSession) -> str:
    """The log file ``spark_session`` set up for ``session`` (or "the Spark driver's log" for another session)."""
    try:
        return str(session.conf.get("reco.log_path"))
    except Exception:  # a session made elsewhere: no such key
        return "the Spark driver's log"


def _first_line(exc: BaseException) -> str:
    """The useful line of a Py4J/Spark error: a Python exception raised in a worker wins, else the first line."""
    text = str(exc)
    # An error raised in a worker: the last "SomeError: message" line of its Python traceback is the cause.
    found = re.findall(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$", text, flags=re.MULTILINE)
    python_side = [(n, m) for n, m in found if not n.startswith(("Py4J", "Spark", "Python"))]
    if python_side:
        name, message = python_side[-1]
        ours = {"DataError", "ConfigError", "ScaleError", "FitError", "RecoError", "UnknownIdError"}
        return message.strip() if name in ours else f"{name}: {message.strip()}"[:300]
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Traceback", "File ", "at ")):
            return line[:300]
    return type(exc).__name__


@contextmanager
def spark_errors(log: str | Path, doing: str) -> Iterator[None]:
    """Turn any Spark, Py4J or worker failure inside the block into one ``SparkError`` line naming ``log``.

    A RecoError raised by our own code on the driver passes through unchanged; one raised inside a worker
    arrives wrapped in a Java exception and is unwrapped to its own message.
    """
    try:
        yield
    except RecoError:
        raise
    except Exception as exc:
        module = type(exc).__module__ or ""
        if not (module.startswith(("py4j", "pyspark")) or isinstance(exc, (ConnectionError, EOFError))):
            raise
        line = _first_line(exc)
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as fh:  # the whole story, for whoever reads the log
            fh.write(f"\n--- reco_core: {doing} failed ---\n{exc}\n")
        raise SparkError(f"Spark failed while {doing}: {line} (details: {log})") from None
