#!/usr/bin/env python
"""fastgmm and scikit-learn's GaussianMixture side by side, on the same data.

    python benchmarks/compare.py                       # all cases, float64
    python benchmarks/compare.py --cases mid,speech --dtype both --markdown
    python benchmarks/compare.py --scale 0.01 --repeats 3   # quick check

Every case at full size by default; ``fastgmm bench`` runs the same code on
one small case. The method (data, timing by difference, peak memory, flop
model) is documented in fastgmm/_bench.py, where the code lives, and in
docs/benchmarks.md.
"""

import sys

from fastgmm._bench import main

if __name__ == "__main__":
    sys.exit(main(prog="compare.py"))
