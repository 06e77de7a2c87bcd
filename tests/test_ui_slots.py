"""The User Explorer's slot labels: who brought each fused item in, consistent with the members' own lists."""

import numpy as np
import pytest

from reco_core import analysis
from reco_core.experiment import MemberSpec
from ui import charts
from ui import lab as lab_module
from ui.state import DEFAULT_MEMBERS, LabConfig, default_weight


@pytest.fixture(scope="module")
def lab_and_cfg():
    # The dashboard's default: ML-100K, als + itemknn + text.
    members = tuple(MemberSpec.of(m) for m in DEFAULT_MEMBERS)
    cfg = LabConfig(members=members, weights=tuple(default_weight(m) for m in DEFAULT_MEMBERS))
    return lab_module.get_lab(cfg), cfg


def test_an_item_in_a_single_members_list_is_credited_to_that_member(lab_and_cfg):
    lab, cfg = lab_and_cfg
    checked = 0
    for user in lab.session.users[:40]:
        view = lab_module.user_view(lab, cfg, int(user))
        table = analysis.slot_table(view, lab.members, lab.catalog)
        k = view.fusion.ranking.k
        own = {n: set(view.member_list(n, k).tolist()) for n in view.fusion.member_names}
        for _, row in table.iterrows():
            listed = [n for n, items in own.items() if int(row["item"]) in items]
            if len(listed) == 1:
                checked += 1
                assert row["brought in by"].startswith(f"{listed[0]} (only in its own top-{k}"), row["brought in by"]
            elif listed:
                shares = {n: row[f"{n} share"] for n in own}
                best = max(shares, key=lambda n: -np.inf if shares[n] != shares[n] else shares[n])
                assert row["brought in by"].startswith(f"{best} ("), (row["brought in by"], shares)
    assert checked > 0


def test_the_engine_names_the_fusion_as_the_charts_colour_it() -> None:
    # reco_core.analysis labels the fused series in its tables; ui.charts picks its colour by that name.
    assert analysis.FUSION == charts.FUSION_NAME
