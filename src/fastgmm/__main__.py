"""`python -m fastgmm`: the built-in demo (three Gaussian blobs: prints the
weights, means, accuracy against the true labels and the fit time, and
draws a figure when matplotlib is installed).

`python -m fastgmm <command>` is the `fastgmm` command line: fit, predict,
select, demo, bench (`python -m fastgmm --help`).
"""

import sys

from fastgmm._cli import main

if __name__ == "__main__":
    sys.exit(main())
