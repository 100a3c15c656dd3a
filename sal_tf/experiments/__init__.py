"""The paper's experiments, run with the generic trainer (`sal_tf.training`): Table 1 and Tables 2 / 3.

    python -m trainers.ablation [--settings=1,3,8]      # Table 1 (§4.3): `run_table1` → table1.md / .json
    python -m trainers.paper --data_root=/data          # Tables 2 and 3 (§4.4): `run_paper` → paper_tables.md

* `table1`: our reading of Table 1 (each setting's switches and the paper's numbers); pure data, imported
  with the package (as `paper_tables`).
* `ablation`: trains each Table 1 setting (`run_ablation`, `run_table1`); `ablation_report`: its tables.
* `paper_tables`: the paper's Tables 2 / 3 and the dataset folders; pure data and formatting.
* `paper_run`: trains each dataset and writes the report (`run_paper`).

The CIFAR-100 comparison of Table 4 is a task of the trainer (`sal_tf/training/tasks/cifar.py`).
The runs are resolved on first use, so `import sal_tf.experiments` imports no TensorFlow.
"""

from sal_tf.experiments.paper_tables import PAPER_TABLES
from sal_tf.experiments.table1 import SETTING_IDS, SETTINGS
from sal_tf.utils.lazy import lazy_module_attrs

# The runs import TensorFlow: resolved on first use.
_LAZY = dict.fromkeys(("parse_settings", "run_ablation", "run_table1"), "sal_tf.experiments.ablation")
_LAZY["run_paper"] = "sal_tf.experiments.paper_run"

__all__ = ["PAPER_TABLES", "SETTINGS", "SETTING_IDS", *sorted(_LAZY)]

__getattr__, __dir__ = lazy_module_attrs(_LAZY, __name__)
