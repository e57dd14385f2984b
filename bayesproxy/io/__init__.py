"""Readers that turn benchmark results into a :class:`~bayesproxy.table.BenchmarkTable`.

* :func:`read_table`: long or wide CSV / CSV.gz / parquet files, or a DataFrame;
* :func:`read_lm_eval`: a directory of lm-evaluation-harness result JSON files.
"""

from bayesproxy.io.lm_eval import read_lm_eval
from bayesproxy.io.tables import read_table

__all__ = ["read_lm_eval", "read_table"]
