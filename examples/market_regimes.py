"""Market regimes: a mixture over daily returns and their recent volatility.

Simulates ten years of daily returns of an equity index from a
Markov-switching model with three regimes (calm: small positive drift and
low volatility; turbulent: higher volatility and a negative drift; crisis:
short spells of very high volatility and steep losses), with fat-tailed
(Student t) shocks. Each day is described by two features: its return and
the volatility of the last 20 days' returns (log scale). The features are on
different scales, so a pipeline standardises them before a three-component
mixture is fitted; the components are the regimes it finds. Prints each
regime's mean return, annualised volatility and share of days, compares the
most probable regime of each day with the simulated one, and draws the
price path above the regime probabilities over time (market_regimes.png).

The mixture treats days as independent: the persistence of regimes enters
only through the rolling volatility. A hidden Markov model would also use
it through its transition matrix.
"""

import matplotlib.pyplot as plt
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.optimize import linear_sum_assignment
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastgmm import GaussianMixture

TRADING_DAYS = 252
WINDOW = 20                                      # days of the rolling volatility
REGIMES = ["calm", "turbulent", "crisis"]
daily_mean = np.array([0.0006, -0.0004, -0.0030])
daily_vol = np.array([0.0070, 0.0150, 0.0350])  # 11%, 24% and 56% a year
stay = np.array([0.990, 0.975, 0.960])           # chance of staying in the regime a day
# Where a regime goes when it ends: calm mostly turns turbulent, a crisis calms down
# through turbulence.
leave_to = np.array([[0.0, 0.85, 0.15], [0.75, 0.0, 0.25], [0.20, 0.80, 0.0]])
transition = np.diag(stay) + (1 - stay)[:, None] * leave_to

rng = np.random.default_rng(0)
n_days = 10 * TRADING_DAYS
regime = np.empty(n_days, dtype=int)
regime[0] = 0
for t in range(1, n_days):
    regime[t] = rng.choice(3, p=transition[regime[t - 1]])
dof = 5                                          # Student t shocks scaled to unit variance
shocks = rng.standard_t(dof, size=n_days) * np.sqrt((dof - 2) / dof)
returns = daily_mean[regime] + daily_vol[regime] * shocks
price = 100 * np.exp(np.cumsum(returns))

# Features of day t: its return and the standard deviation of the returns of
# days t-19..t (the first 19 days have no full window and are left out).
volatility = sliding_window_view(returns, WINDOW).std(axis=1, ddof=1)
X = np.column_stack([returns[WINDOW - 1:], np.log(volatility)])
truth = regime[WINDOW - 1:]
days = np.arange(WINDOW - 1, n_days)

model = make_pipeline(StandardScaler(),
                      GaussianMixture(n_components=3, covariance_type="full", n_init=3,
                                      random_state=0))
proba = model.fit(X).predict_proba(X)
gmm = model[-1]
found = proba.argmax(axis=1)
print(f"{len(X)} trading days, 2 features (return, log {WINDOW}-day volatility); "
      f"{gmm.n_iter_} EM iterations, converged={gmm.converged_}")

# Name the components by their volatility: the calmest is "calm", and so on.
order = np.argsort([returns[WINDOW - 1:][found == k].std() for k in range(3)])
print("regime found   mean daily return   annualised vol   share of days   "
      "(simulated: mean, vol, share)")
for name, k in zip(REGIMES, order):
    r = X[found == k, 0]
    simulated = truth == REGIMES.index(name)
    print(f"  {name:<10}      {r.mean():+8.3%}          {r.std() * np.sqrt(TRADING_DAYS):6.1%}"
          f"          {np.mean(found == k):6.1%}      "
          f"({daily_mean[REGIMES.index(name)]:+.3%}, "
          f"{daily_vol[REGIMES.index(name)] * np.sqrt(TRADING_DAYS):.0%}, {simulated.mean():.1%})")

confusion = np.zeros((3, 3), dtype=int)
np.add.at(confusion, (found, truth), 1)
rows, cols = linear_sum_assignment(-confusion)
agreement = confusion[rows, cols].sum() / len(truth)
named = dict(zip(rows, cols))
recall = {REGIMES[c]: confusion[r, c] / confusion[:, c].sum() for r, c in zip(rows, cols)}
print("days of each simulated regime given that regime: "
      + ", ".join(f"{name} {recall[name]:.1%}" for name in REGIMES))
print(f"agreement with the simulated regimes: {agreement:.3f} "
      f"(best matching of components to regimes; naming by volatility "
      f"{'agrees' if all(named[k] == i for i, k in enumerate(order)) else 'differs'})")

fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True,
                                  gridspec_kw={"height_ratios": [1.2, 1]})
colors = ["tab:green", "tab:orange", "tab:red"]
top.plot(np.arange(n_days) / TRADING_DAYS, price, color="black", linewidth=0.8)
for i in (1, 2):                                 # the simulated regimes, shaded
    top.fill_between(np.arange(n_days) / TRADING_DAYS, 0, 1, where=regime == i,
                     color=colors[i], alpha=0.2, linewidth=0,
                     transform=top.get_xaxis_transform(),
                     label=f"simulated {REGIMES[i]}")
top.set_ylabel("price")
top.set_title("simulated index, its turbulent and crisis spells shaded")
top.legend(loc="upper left", fontsize=8)
bottom.stackplot(days / TRADING_DAYS, proba[:, order].T, colors=colors, linewidth=0,
                 labels=[f"P({name})" for name in REGIMES])
bottom.set_ylim(0, 1)
bottom.set_xlim(0, n_days / TRADING_DAYS)
bottom.set_xlabel("years")
bottom.set_ylabel("regime probability")
bottom.set_title(f"predict_proba of the mixture (agreement with the simulation "
                 f"{agreement:.0%})")
bottom.legend(loc="lower left", fontsize=8, ncol=3)
fig.tight_layout()
fig.savefig("market_regimes.png", dpi=80)
print("wrote market_regimes.png")
