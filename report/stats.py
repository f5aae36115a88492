"""The report's statistics, written out (tests compare them with scipy.stats): the Wilson interval of an accuracy,
the exact binomial test against chance, the exact McNemar (sign) test of two paired classifiers or maps, and how
many paired images such a test needs before it can reach significance at all. Pure functions of counts."""
import math

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
ALPHA = 0.05             # a difference, an accuracy above chance, a map beating a baseline: significant below this p


def wilson_interval(k, n, z=Z95):
    """95% Wilson score interval of a proportion k/n (Wilson 1927): unlike p +- z sqrt(p(1-p)/n) it stays inside
    [0, 1] and keeps its coverage for small n and for p near 0 or 1."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_pmf(k, n, p):
    """P(X = k) for X ~ Binomial(n, p), in log space so that n in the tens of thousands does not overflow."""
    if p in (0.0, 1.0):
        return float(k == (n if p == 1.0 else 0))
    return math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p)
                    + (n - k) * math.log1p(-p))


def above_chance_p(k, n, chance):
    """One-sided exact binomial test: P(at least k of n right | each right with probability `chance`)."""
    return min(1.0, sum(binomial_pmf(i, n, chance) for i in range(k, n + 1)))


def mcnemar_exact(b, c):
    """Exact McNemar test of two classifiers on the same paintings: b paintings only the first got right, c only the
    second. Under "no difference" each of the b + c discordant paintings goes either way with probability 1/2; the
    two-sided p-value is twice the smaller tail (capped at 1)."""
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(binomial_pmf(i, n, 0.5) for i in range(0, min(b, c) + 1)))


def fmt_p(p):
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def images_needed(alpha=ALPHA):
    """The fewest images for which a paired exact test can reach p < alpha at all (every image going one way)."""
    n = 1
    while 2 * 0.5 ** n >= alpha:
        n += 1
    return n
