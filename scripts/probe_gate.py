"""What separates rare from common encounters on simulated data (issue 11's gate band).

Fits a P(rare) XGBoost (the gate's settings) on the train split's feature matrix and
reports, on the test split:

- the AUROC of rare against common encounters;
- the same with a share of the rare diseases held out of training entirely, for their
  test encounters (unseen diseases) and for the others (seen diseases): if the gate
  memorised diseases, the unseen AUROC would drop;
- the features carrying most of the model's gain.

Writes ``data/08_reporting/gate_probe.json``::

    python scripts/probe_gate.py            # after `make train`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("label_disease", "label_category", "label_severity")


def features(frame: pd.DataFrame) -> list[str]:
    """The numeric feature columns (keys, labels and dates left out)."""
    return [c for c in frame.columns if c not in LABELS and pd.api.types.is_numeric_dtype(frame[c])]


def fit_gate(x: pd.DataFrame, rare: np.ndarray, seed: int) -> xgb.XGBClassifier:
    """A class-weighted binary XGBoost like the gate's (``common_model.gate``)."""
    weight = np.where(rare == 1, np.sqrt(len(rare) / (2 * max(rare.sum(), 1))), 1.0)
    model = xgb.XGBClassifier(
        n_estimators=200, max_depth=4, learning_rate=0.1, subsample=0.9,
        colsample_bytree=0.5, max_bin=64, tree_method="hist", n_jobs=2, random_state=seed,
    )  # fmt: skip
    return model.fit(x, rare, sample_weight=weight)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "05_model_input")
    parser.add_argument("--held-out-share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "data/08_reporting/gate_probe.json")
    args = parser.parse_args(argv)
    train = pd.read_parquet(args.data / "train.parquet")
    test = pd.read_parquet(args.data / "test.parquet")
    columns = features(train)
    rare_train = (train["label_category"] == "RARE").to_numpy(int)
    rare_test = (test["label_category"] == "RARE").to_numpy(int)

    everything = fit_gate(train[columns], rare_train, args.seed)
    auroc = roc_auc_score(rare_test, everything.predict_proba(test[columns])[:, 1])

    diseases = np.array(sorted(train.loc[rare_train == 1, "label_disease"].unique()))
    np.random.default_rng(args.seed).shuffle(diseases)
    held = set(diseases[: int(args.held_out_share * len(diseases))])
    kept = ~train["label_disease"].isin(held).to_numpy()
    partial = fit_gate(train.loc[kept, columns], rare_train[kept], args.seed)
    scores = partial.predict_proba(test[columns])[:, 1]
    unseen = test["label_disease"].isin(held).to_numpy()
    common = rare_test == 0
    gain = pd.Series(everything.get_booster().get_score(importance_type="total_gain"))
    share = (gain / gain.sum()).sort_values(ascending=False).head(15)
    report = {
        "test_rare": int(rare_test.sum()),
        "test_common": int(common.sum()),
        "auroc": round(float(auroc), 4),
        "held_out_diseases": len(held),
        "auroc_unseen_diseases": round(
            float(roc_auc_score(rare_test[common | unseen], scores[common | unseen])), 4
        ),
        "auroc_seen_diseases": round(
            float(roc_auc_score(rare_test[common | ~unseen], scores[common | ~unseen])), 4
        ),
        "test_encounters_of_unseen_diseases": int(unseen.sum()),
        "gain_share": {k: round(float(v), 4) for k, v in share.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
