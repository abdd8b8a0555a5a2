"""asv benchmarks of fastgmm (see benchmarks/asv.conf.json and docs/benchmarks.md)."""
