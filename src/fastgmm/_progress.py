"""A progress bar for long fits, as a fit callback."""

import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from fastgmm._gaussian_mixture import IterationInfo


class ProgressBar:
    """Callback showing one bar over n_init x max_iter iterations on stderr.

    ``GaussianMixture(...).fit(X, callback=ProgressBar())``. Uses tqdm when
    it is installed, a one-line counter otherwise. An initialisation that
    converges early moves the bar to the start of the next one.
    """

    def __init__(self, file: TextIO | None = None, desc: str = "EM") -> None:
        self.file = file if file is not None else sys.stderr
        self.desc = desc
        self._bar = None
        self._done = 0
        self._total: int | None = None

    def __call__(self, info: "IterationInfo") -> None:
        if self._total is None:
            self._total = info.n_init * info.max_iter
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=self._total, desc=self.desc, file=self.file,
                                 leave=True)
        position = info.init * info.max_iter + (info.max_iter if info.converged else info.n_iter)
        step, self._done = position - self._done, position
        if self._bar is not None:
            self._bar.update(step)
            self._bar.set_postfix(lower_bound=f"{info.lower_bound:.5g}", refresh=False)
            if position >= self._total:
                self._bar.close()
        else:
            print(f"\r{self.desc}: {position}/{self._total} iterations, "
                  f"lower bound {info.lower_bound:.6g}", end="", file=self.file, flush=True)
            if position >= self._total:
                print(file=self.file)
