"""Bootstrap intervals and paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from reco_core import stats
from reco_core.errors import ConfigError
from reco_core.stats import PairedComparison, bootstrap_ci, paired_comparison


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    v = np.random.default_rng(0).random(300)
    low, high = bootstrap_ci(v, n_boot=500, seed=1)
    assert low < v.mean() < high
    # Standard error of a uniform mean is about 0.29 / sqrt(300) = 0.017: the 95% width is near 0.065.
    assert 0.04 < high - low < 0.09
    assert bootstrap_ci(v, n_boot=500, seed=1) == (low, high)
    assert bootstrap_ci(v, n_boot=500, seed=2) != (low, high)
    narrower = bootstrap_ci(v, n_boot=500, seed=1, ci=0.5)
    assert low < narrower[0] < narrower[1] < high


def test_bootstrap_ci_edge_cases():
    assert bootstrap_ci(np.full(20, 0.25), n_boot=50) == (0.25, 0.25)
    assert bootstrap_ci(np.array([0.7]), n_boot=50) == (0.7, 0.7)
    low, high = bootstrap_ci(np.array([]), n_boot=50)
    assert np.isnan(low) and np.isnan(high)


def test_bootstrap_chunks_do_not_change_the_resamples(monkeypatch):
    v = np.random.default_rng(0).random(50)
    whole = stats.bootstrap_means(v, 100, seed=3)
    monkeypatch.setattr(stats, "_CHUNK_CELLS", 70)  # one resample per chunk
    np.testing.assert_allclose(stats.bootstrap_means(v, 100, seed=3), whole, rtol=0, atol=1e-12)


def test_bootstrap_intervals_equal_bootstrap_ci_row_by_row():
    rng = np.random.default_rng(4)
    rows = np.stack([rng.random(120), rng.integers(0, 2, 120), rng.random(120) ** 3])
    low, high = stats.bootstrap_intervals(rows, n_boot=300, seed=9)
    for r in range(3):
        lo, hi = bootstrap_ci(rows[r], n_boot=300, seed=9)
        assert low[r] == pytest.approx(lo, abs=1e-12) and high[r] == pytest.approx(hi, abs=1e-12)
    # The resampled means are the means of actual resamples: same draws as indexing by hand.
    idx = np.random.default_rng(9).integers(0, 120, (300, 120))
    np.testing.assert_allclose(stats.bootstrap_means(rows, 300, seed=9), rows[:, idx].mean(axis=2), atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_boot": 0}, "n_boot=0 is not valid"),
        ({"ci": 1.0}, "ci=1.0 is not valid"),
        ({"ci": 95}, "ci=95 is not valid"),
    ],
)
def test_bootstrap_ci_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        bootstrap_ci(np.ones(3), **kwargs)


def test_bootstrap_ci_rejects_nan_values():
    with pytest.raises(ConfigError, match="NaN or inf at position 1"):
        bootstrap_ci(np.array([0.1, np.nan]))


def test_paired_comparison_finds_a_real_difference():
    rng = np.random.default_rng(0)
    a = rng.random(943)
    b = a + 0.012 + rng.normal(0, 0.02, 943)
    c = paired_comparison(a, b, "ndcg@10", n_boot=500)
    assert c.n == 943
    assert c.mean_diff == pytest.approx(b.mean() - a.mean())
    assert c.mean_a == pytest.approx(a.mean()) and c.mean_b == pytest.approx(b.mean())
    assert c.ci_low < c.mean_diff < c.ci_high and c.ci_low > 0
    expected = sps.wilcoxon(b - a)
    assert c.p_value == pytest.approx(expected.pvalue) and c.wilcoxon_statistic == expected.statistic
    assert c.significant
    text = c.sentence("ALS", "EASE")
    assert text.startswith("EASE beats ALS by 0.01")
    assert "NDCG@10 (95% CI" in text and "over 943 users: a real difference" in text
    # Swapping the two flips the sign and the wording, not the verdict.
    back = paired_comparison(b, a, "ndcg@10", n_boot=500)
    assert back.mean_diff == pytest.approx(-c.mean_diff)
    assert back.sentence("EASE", "ALS").startswith("EASE beats ALS by 0.01")


def test_paired_comparison_says_when_it_could_be_chance():
    rng = np.random.default_rng(1)
    a = rng.random(200)
    b = a + rng.normal(0, 0.05, 200)
    b -= b.mean() - a.mean() - 1e-4  # a tiny mean difference inside the noise
    c = paired_comparison(a, b, "recall@10", n_boot=500)
    assert not c.significant
    assert c.sentence("A", "B").endswith("could be chance")
    assert "is ahead of" in c.sentence("A", "B")


def test_lower_is_better_metrics_turn_the_winner_around():
    a = np.full(30, 0.5)
    b = a - 0.1 - np.linspace(0, 0.01, 30)  # B has a lower ARP-like value on every user
    c = paired_comparison(a, b, "arp@10", n_boot=200)
    assert c.sentence("pop", "ease").startswith("ease beats pop by 0.105 ARP@10")
    assert "lower is better" in c.sentence("pop", "ease")


def test_identical_values_give_p_one_without_an_exception():
    a = np.random.default_rng(2).random(50)
    c = paired_comparison(a, a.copy(), "ndcg@10")
    assert c.p_value == 1.0 and c.wilcoxon_statistic == 0.0
    assert c.mean_diff == 0 and (c.ci_low, c.ci_high) == (0.0, 0.0)
    assert "score the same NDCG@10 on every one of 50 users" in c.sentence()
    assert not c.significant


def test_unknown_metric_names_are_used_as_given():
    c = PairedComparison("clicks", 10, 1.0, 2.0, 1.0, 0.5, 1.5, 0.0, 0.001)
    assert c.sentence("x", "y").startswith("y beats x by 1.000 clicks (95% CI 0.500 to 1.500)")


def test_paired_comparison_rejects_mismatched_inputs():
    with pytest.raises(ConfigError, match="A has 3 per-user values and B has 2"):
        paired_comparison(np.ones(3), np.ones(2))
    with pytest.raises(ConfigError, match="no users to compare"):
        paired_comparison(np.array([]), np.array([]))
    with pytest.raises(ConfigError, match="values of B contain NaN"):
        paired_comparison(np.ones(2), np.array([1.0, np.nan]))


def test_p_words_never_reads_as_alpha_near_it() -> None:
    from reco_core.stats import p_words

    assert [p_words(p) for p in (0.0031, 2.1e-5, 0.117, 0.05)] == ["0.003", "2.1e-05", "0.117", "0.050"]
    assert p_words(0.0497) == "0.0497" and p_words(0.0503) == "0.0503"  # three decimals would say 0.050
    assert p_words(0.04996) == "just below 0.05" and p_words(0.05004) == "just above 0.05"
    assert p_words(float("nan")) == "n/a"
