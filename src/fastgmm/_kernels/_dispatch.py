"""Which build of the kernels (em_pass, estimate, the k-means passes) this process runs.

setup.py compiles `_suffstats`, `_estep` and `_kmeans` for FASTGMM_ARCH: "native" for a
source install (the build machine's CPU), the baseline for "none" and
"dispatch". Under "dispatch" (the wheels) on x86-64 it also compiles them
for x86-64-v3 (AVX2 + FMA) as `_suffstats_x86_64_v3`, `_estep_x86_64_v3`
and `_kmeans_x86_64_v3`. At import the fastest variant this CPU can run is
chosen; the environment variable FASTGMM_KERNELS names one instead
("baseline", "x86-64-v3", or the name of a source build's variant, e.g.
"native"), which the tests and benchmarks use; a name this installation
did not build (or this CPU cannot run) warns and falls back to the default
choice, so that `import fastgmm` never fails over it.

Every variant computes the same thing; their results may differ in the last
bits (e.g. FMA contraction), while each one is deterministic on its own.
"""

import importlib
import os
import warnings
from contextlib import contextmanager

from fastgmm._kernels._cpu import supports_x86_64_v3
from fastgmm._kernels._openmp_helpers import build_arch

ENV_VAR = "FASTGMM_KERNELS"

# Extra variants (name, module suffix, "can this CPU run it"), fastest first.
_EXTRA_VARIANTS = [("x86-64-v3", "_x86_64_v3", supports_x86_64_v3)]


class _Variant:
    """One build of the kernel modules."""

    def __init__(self, name, suffix, runnable):
        self.name = name
        self.suffix = suffix
        self.runnable = runnable
        self.suffstats = importlib.import_module(f"fastgmm._kernels._suffstats{suffix}")
        self.estep = importlib.import_module(f"fastgmm._kernels._estep{suffix}")
        self.kmeans = importlib.import_module(f"fastgmm._kernels._kmeans{suffix}")

    def __repr__(self):
        return f"<fastgmm kernels {self.name}>"


def _main_variant_name():
    arch = build_arch()
    return "baseline" if arch == "none" else arch


def _discover():
    """The built variants, fastest first; the main build last."""
    variants = []
    for name, suffix, check in _EXTRA_VARIANTS:
        try:
            variants.append(_Variant(name, suffix, check()))
        except ImportError:  # not built (not x86-64, or not FASTGMM_ARCH=dispatch)
            pass
    main = _main_variant_name()
    # A source build for a named level (FASTGMM_ARCH=x86-64-v3) can be checked too.
    runnable = supports_x86_64_v3() if main == "x86-64-v3" else True
    variants.append(_Variant(main, "", runnable))
    return variants


def _choose(variants, requested):
    if requested in ("", "auto"):
        for variant in variants:
            if variant.runnable:
                return variant
        raise RuntimeError(
            f"fastgmm: this CPU cannot run the kernels it was built with "
            f"({variants[-1].name}). Reinstall from source for this machine: "
            "pip install --no-binary fastgmm fastgmm"
        )
    names = [v.name for v in variants]
    for variant in variants:
        if variant.name == requested:
            if not variant.runnable:
                raise RuntimeError(
                    f"{ENV_VAR}={requested}: this CPU cannot run the {requested} "
                    f"kernels. Unset {ENV_VAR}, or choose one of {names} it can run."
                )
            return variant
    raise ValueError(
        f"{ENV_VAR}={requested!r} names no kernels built into this installation; "
        f"built: {names} (or 'auto', the default)."
    )


def _choose_at_import(variants, requested):
    """The variant FASTGMM_KERNELS asks for; one this installation lacks or
    this CPU cannot run is a warning, not a failed import: the fastest
    runnable variant is used instead (show_config() says which)."""
    try:
        return _choose(variants, requested)
    except (ValueError, RuntimeError) as error:
        if requested in ("", "auto"):
            raise
        chosen = _choose(variants, "auto")
        warnings.warn(
            f"{error} Using the {chosen.name} kernels instead.", RuntimeWarning, stacklevel=2
        )
        return chosen


VARIANTS = _discover()
_active = _choose_at_import(VARIANTS, os.environ.get(ENV_VAR, "auto").strip())


def active_variant():
    """Name of the kernel variant in use."""
    return _active.name


def active_kmeans_module():
    """Module name of the k-means kernels in use."""
    return _active.kmeans.__name__


def available_variants():
    """Names of the built variants this CPU can run, fastest first."""
    return [v.name for v in VARIANTS if v.runnable]


@contextmanager
def use_variant(name):
    """Run the kernels of variant `name` inside the block (tests only: not
    thread-safe with respect to fits running in other threads)."""
    global _active
    previous = _active
    _active = _choose(VARIANTS, name)
    try:
        yield _active
    finally:
        _active = previous


def em_pass(*args, **kwargs):
    """_suffstats.em_pass of the active variant."""
    return _active.suffstats.em_pass(*args, **kwargs)


def estimate(*args, **kwargs):
    """_estep.estimate of the active variant."""
    return _active.estep.estimate(*args, **kwargs)


def kernel_math(*args, **kwargs):
    """_estep.kernel_math (the kernels' exp and log) of the active variant."""
    return _active.estep.kernel_math(*args, **kwargs)



def lloyd_pass(*args, **kwargs):
    """_kmeans.lloyd_pass of the active variant."""
    return _active.kmeans.lloyd_pass(*args, **kwargs)


def kmeanspp_potentials(*args, **kwargs):
    """_kmeans.kmeanspp_potentials of the active variant."""
    return _active.kmeans.kmeanspp_potentials(*args, **kwargs)


def kmeanspp_closest(*args, **kwargs):
    """_kmeans.kmeanspp_closest of the active variant."""
    return _active.kmeans.kmeanspp_closest(*args, **kwargs)


def label_statistics(*args, **kwargs):
    """_kmeans.label_statistics of the active variant."""
    return _active.kmeans.label_statistics(*args, **kwargs)
