"""The memorization gate's power: the committed default run beside a run made to memorize, as the memorize stage
measured each (a gate that only ever passes proves nothing).

    dvc exp run -n memorize-10x -S data.fraction=0.1 -S train.epochs=10 -S memorize.enforce=false memorize
    python benchmarks/memorizing.py --experiment memorize-10x

The experiment trains on a tenth of the train notes, each seen ten times (and each planted canary with it), then
runs the memorize stage to the end (`memorize.enforce=false`). This script reads the default run's
metrics/detail/memorization.json from the workspace and the experiment's from its commit (`git show`; DVC keeps
an experiment under refs/exps), and writes benchmarks/results/memorizing.json: every number the gate reads, the
limit of each gated bound, and each run's gate. docs/privacy.md shows the table (`python -m notelm.readme`).
"""

from __future__ import annotations

import argparse
import json
import subprocess

from results import save  # benchmarks/, on the path when run as a script

from notelm.config.memorize import MemorizeParams
from notelm.config.names import GATE, VARIANTS
from notelm.core.errors import NoteLMError
from notelm.core.files import read_json
from notelm.core.loader import load_params, load_section
from notelm.core.paths import MEMORIZATION_DETAIL

SHOWN = (("exact_train", 3), ("exact_test", 3), ("exact_gap", 3), ("exact_gap_upper", 3), ("lcs_train", 2),
         ("lcs_test", 2), ("lcs_gap", 2), ("lcs_gap_upper", 2), ("canary_exposure_mean", 2),
         ("control_exposure_mean", 2), ("canary_gap", 2), ("canary_gap_upper", 2))


def experiment_detail(name: str) -> dict:
    """The experiment's detail memorization.json, read from its commit under refs/exps."""
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps"],
                          capture_output=True, text=True, check=True).stdout.split("\n")
    found = [sha for line in refs if line and (ref := line.split())[0].endswith(f"/{name}") for sha in ref[1:]]
    if not found:
        raise NoteLMError(f"no DVC experiment named {name!r} (git refs/exps); run the `dvc exp run -n {name}` above")
    shown = subprocess.run(["git", "show", f"{found[-1]}:{MEMORIZATION_DETAIL}"], capture_output=True, text=True,
                           check=True).stdout
    return json.loads(shown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="memorize-10x", help="the DVC experiment made to memorize")
    args = parser.parse_args()
    limits = load_section(MemorizeParams, load_params()).fail_on
    runs = {"default run": read_json(MEMORIZATION_DETAIL), args.experiment: experiment_detail(args.experiment)}
    fine = VARIANTS[1]
    rows = []
    for metric, digits in SHOWN:
        limit = limits.get(f"{fine}.{metric}")
        rows.append([metric, *(f"{d[fine][metric]:.{digits}f}" if metric in d[fine] else "–" for d in runs.values()),
                     "" if limit is None else f"≤ {limit:g}"])
    rows.append(["gate", *(d[GATE] for d in runs.values()), ""])
    notes = [f"{name}: {d['settings']['sample']} test windows asked, {d['matching']['pairs']} pairs; "
             f"{d[fine].get('canaries', 0)} canaries; problems: "
             + ("; ".join(d["problems"].get(fine, [])) or "none") + "." for name, d in runs.items()]
    save("memorizing", ["fine-tuned model", *runs, "limit (memorize.fail_on)"], rows, notes,
         title="The memorization gate on the default run and on a run made to memorize")


if __name__ == "__main__":
    main()
