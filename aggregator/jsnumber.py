"""JavaScript number semantics the reference's output depends on.

Dashboards compare our series with the reference's, so values must print exactly like JS
`String(number)` and percentile slices must round like JS `Math.round`.
"""

from __future__ import annotations

import math


def js_round(x: float) -> int:
    """JS Math.round: nearest integer, ties toward +infinity (Python rounds ties to even)."""
    r = math.floor(x)
    return r + 1 if x - r >= 0.5 else r


def js_str(x: float) -> str:
    """JS String(number): shortest round-trip digits, fixed notation for 1e-7 < |x| < 1e21."""
    if x.__class__ is int:
        return str(x)
    if math.isnan(x):
        return "NaN"
    if x in (math.inf, -math.inf):
        return "Infinity" if x > 0 else "-Infinity"
    if x.is_integer() and -1e15 < x < 1e15:
        return str(int(x))  # also turns -0.0 into "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    if frac == "0":
        frac = ""
    digits = (whole + frac).lstrip("0")
    # value = 0.<digits> * 10**n
    n = len(whole) + (int(exp) if exp else 0) - (len(whole + frac) - len(digits))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    esign = "+" if e > 0 else "-"
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{head}e{esign}{abs(e)}"
