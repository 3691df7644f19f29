"""The thresholds every rule reads (the output quotes them), each with its source."""

from __future__ import annotations

from losscli.detect import TASKS, Task

SCHEMA = "losscli.recommend/1"

RecTask = Task
REC_TASKS = TASKS


# --- thresholds: every rule reads one of these, and the output quotes them -----------------------

#: 1 / Phi^-1(3/4): makes the MAD a consistent estimate of sigma for normal data.
MAD_TO_SIGMA = 1.4826
#: Modified z-score cut (Iglewicz & Hoaglin 1993): |e - median| / robust scale above it is an
#: outlier. Normal residuals put 0.047% of rows past it.
OUTLIER_Z = 3.5
#: Huber's tuning constant: delta = 1.345 x robust scale gives 95% asymptotic efficiency at the
#: normal while bounding the influence of outliers (Huber 1981).
HUBER_K = 1.345
#: Outlier fraction above which outliers are "present" (about 20x the normal rate of 0.047%).
OUTLIER_SHARE_NOTABLE = 0.01
#: Outlier fraction above which outliers are a "large share": the median (mae) has the smallest
#: worst-case bias under heavy contamination (Huber 1964), so mae replaces huber.
OUTLIER_SHARE_LARGE = 0.10
#: Excess kurtosis above which tails are "heavy" (normal 0, logistic 1.2, Laplace 3, Student-t5 6;
#: the sampling error of the normal's is sqrt(24 / n), 0.015 at 1e5 rows).
HEAVY_TAIL_KURTOSIS = 1.0
#: |quartile skewness| (Bowley: (Q3 + Q1 - 2 Q2) / (Q3 - Q1), in [-1, 1]) above which the values
#: are called asymmetric: a note, it changes no rule. Normal and Student-t 0, exponential 0.26,
#: lognormal(sigma=1) 0.32. Quartiles, unlike the moment skewness, are not swayed by heavy tails.
QUARTILE_SKEW_NOTABLE = 0.1
#: Regression: every target > 0 and the target's moment skewness above this is "positive and
#: right-skewed" (prices, durations, claim sizes): errors grow with the level, so a loss on the
#: relative scale (Gamma deviance, squared log error) replaces mse / huber. Gamma(shape 4) has
#: skewness 1.0, exponential 2, lognormal(sigma 0.5) 1.75, normal 0; its sampling error is about
#: sqrt(6 / n), 0.05 at 2,000 rows.
POSITIVE_SKEW = 1.0
#: Regression: non-negative targets, non-integer positive values and at least this share of
#: exact zeros are "zero-inflated amounts" (claims, demand, rainfall): Tweedie deviance with a
#: power in (1, 2), a compound Poisson-Gamma, gives the zeros a probability mass.
ZERO_MASS = 0.05
#: The Tweedie power recommended for zero-inflated amounts: the middle of (1, 2) (LightGBM's
#: tweedie_variance_power default); tune it by the deviance on held-out data.
TWEEDIE_POWER = 1.5
#: Binary: a minority share below this is "rare": bce with pos_weight = n_neg / n_pos.
RARE_MINORITY = 0.10
#: Binary: a minority share below this is "extremely rare": focal loss.
EXTREMELY_RARE_MINORITY = 0.01
#: Multiclass: largest / smallest class count at or above this is "imbalanced": class weights.
IMBALANCE_RATIO = 3.0
#: Focal loss focusing exponent (Lin et al. 2017 found 2 best).
FOCAL_GAMMA = 2.0
#: A probability of the true class below this is "confidently wrong" (evidence only).
CONFIDENT_WRONG_P = 0.1
#: Rows whose exact median is the pilot centre of the robust-scale histograms.
PILOT_ROWS = 1 << 16
#: One pass suffices while |median - pilot| <= this x MAD (MAD bound alpha (1 + 2 x this)).
PILOT_TOLERANCE = 0.25
#: At most this many passes re-centre the histograms on the median found.
MAX_CENTRING_PASSES = 3
#: Classes of a target-only multiclass analysis (class indices 0..k-1).
MAX_CLASSES = 10_000

THRESHOLDS: dict[str, float] = {
    "outlier_z": OUTLIER_Z,
    "mad_to_sigma": MAD_TO_SIGMA,
    "huber_k": HUBER_K,
    "outlier_share_notable": OUTLIER_SHARE_NOTABLE,
    "outlier_share_large": OUTLIER_SHARE_LARGE,
    "heavy_tail_kurtosis": HEAVY_TAIL_KURTOSIS,
    "quartile_skew_notable": QUARTILE_SKEW_NOTABLE,
    "rare_minority": RARE_MINORITY,
    "extremely_rare_minority": EXTREMELY_RARE_MINORITY,
    "imbalance_ratio": IMBALANCE_RATIO,
    "positive_skew": POSITIVE_SKEW,
    "zero_mass": ZERO_MASS,
    "tweedie_power": TWEEDIE_POWER,
    "focal_gamma": FOCAL_GAMMA,
    "confident_wrong_p": CONFIDENT_WRONG_P,
}
