"""Same seed, same numbers: across runs and across separate Python processes.

Two fresh interpreters (different hash seeds, separate embedding caches, so the text model really encodes in
each) load a slice of MovieLens-100K (users 1-150, items 1-400), split it with seed 42, fit pop, itemknn, als,
bpr, ease, neural and text, and print a sha256 of the split, of each model's score block and every metric of
each model. The two outputs must be identical, byte for byte; a different seed must change the split.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reco_core import datasets, splitting

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("pop", "itemknn", "als", "bpr", "ease", "neural", "text")

SCRIPT = """
import hashlib, json, sys
import numpy as np
from reco_core import datasets, experiment
from reco_core.experiment import MemberSpec, Protocol

def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()

full = datasets.load("ml-100k")
frame = full.interactions.to_frame().rename(columns={"value": "rating"})
frame = frame[(frame["user"].astype(int) <= 150) & (frame["item"].astype(int) <= 400)]
items = full.catalog.to_frame()
ds = datasets.load_files(frame, items=items[items["item"].astype(int) <= 400], name="ml-100k-slice")
out = {"shape": [ds.interactions.n_users, ds.interactions.n_items, ds.interactions.nnz], "models": {}}
for seed in (42, 43):
    s = experiment.make_split(ds, Protocol(seed=seed))
    out[f"split_{seed}"] = digest(s.train.matrix.indptr, s.train.matrix.indices, s.test.matrix.indices)
split = experiment.make_split(ds, Protocol(seed=42))
ctx = experiment.eval_context(split, ds, with_text=True)
users = split.eval_users()
for name in sys.argv[1].split(","):
    model = experiment.fit_member(MemberSpec.of(name), split, ds, seed=42)
    ev = experiment.evaluate_scorer(model, split, ctx, ks=(5, 10))
    out["models"][name] = {
        "scores": digest(model.score(users)),
        "metrics": {k: float(v).hex() for k, v in ev.values().items()},
    }
print(json.dumps(out, sort_keys=True))
"""


def run_twice(tmp_path: Path) -> tuple[dict, dict]:
    """The script in two concurrent processes that share nothing but the code and the data files."""
    script = tmp_path / "determinism.py"
    script.write_text(SCRIPT)
    procs = []
    for i, hash_seed in enumerate(("1", "2")):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONHASHSEED": hash_seed,
            "RECO_CACHE_DIR": str(tmp_path / f"cache{i}"),
            "RECO_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), ",".join(MODELS)],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, f"the script failed:\n{stderr[-3000:]}"
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    return outputs[0], outputs[1]


def test_same_seed_same_numbers_in_two_processes(tmp_path: Path) -> None:
    a, b = run_twice(tmp_path)
    assert a["shape"] == [150, 400, a["shape"][2]] and a["shape"][2] > 5000
    assert sorted(a["models"]) == sorted(MODELS)
    # Guards against a vacuous pass: each model scored differently and produced every metric.
    assert len({m["scores"] for m in a["models"].values()}) == len(MODELS)
    for name, m in a["models"].items():
        assert {"ndcg@10", "coverage@5", "ild_text@10", "personalisation@10"} <= set(m["metrics"]), name
        assert float.fromhex(m["metrics"]["hit_rate@10"]) > 0, f"{name} hit nobody: the slice is wrong"
    assert a["split_42"] != a["split_43"], "a different seed must give a different split"
    for key in ("shape", "split_42", "split_43"):
        assert a[key] == b[key], key
    for name in MODELS:
        assert a["models"][name]["scores"] == b["models"][name]["scores"], f"{name}: scores differ across processes"
        assert a["models"][name]["metrics"] == b["models"][name]["metrics"], f"{name}: metrics differ across processes"


def test_split_seed_decides_the_split_in_process() -> None:
    inter = datasets.synthetic(60, 50, 1500, seed=5, min_user_interactions=10).interactions
    for method in ("random", "temporal", "leave-last"):
        first = splitting.make_split(inter, method, 0.2, seed=7, valid_frac=0.1)
        again = splitting.make_split(inter, method, 0.2, seed=7, valid_frac=0.1)
        for part in ("train", "test", "valid"):
            x, y = getattr(first, part).matrix, getattr(again, part).matrix
            assert np.array_equal(x.indptr, y.indptr) and np.array_equal(x.indices, y.indices), (method, part)
    random_7 = splitting.make_split(inter, "random", 0.2, seed=7).test.matrix
    random_8 = splitting.make_split(inter, "random", 0.2, seed=8).test.matrix
    assert random_7.nnz == random_8.nnz  # the per-user counts depend on the fraction only
    assert not np.array_equal(random_7.indices, random_8.indices), "seed 8 held out the same items as seed 7"
