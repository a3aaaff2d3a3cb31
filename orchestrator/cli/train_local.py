"""`fedchem train-local`: one partner trains the model alone on its prepared dataset (the baseline of the report)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fedchem.opener.errors import ConfigError

HELP = """\
Train the SparseChem-class model on one partner's prepared dataset alone: the baseline every federated result is
compared with. Trains on every fold except the validation and test folds, evaluates the validation fold after
each epoch, stops early when no kind has improved for `early_stopping_patience` epochs, and chooses per kind the
epoch a federated run would choose its round by: classification tasks from the epoch with the highest mean
validation AUC-PR, regression tasks from the one with the lowest mean censor-aware validation RMSE (non-auxiliary
tasks; the test fold never enters a choice).

Settings come from the consortium config's `model` and `training` sections when --consortium is given (else the
defaults); the flags below override them.

output (--out DIR, default PREPARED_DIR-alone; written to a temporary folder and renamed into place):
  trunk.npz, head.npz        parameters of the classification choice (the regression one without
                             classification tasks; named float32 arrays, fedchem.algo.params.load_params)
  model.json                 n_features, task counts and model settings needed to rebuild the network
  metrics.json               settings, folds, chosen epochs, aggregate metrics on the validation and test folds
  metrics_per_task.csv       every metric of every task, validation and test folds
  test_predictions.npz       test-fold predictions of the chosen epochs (fedchem.algo.predictions format, shared
                             with federated runs)
  validation_predictions.npz the same on the validation fold (the report calibrates conformal figures on them)
  history.json               training loss and validation figures per epoch
All of it is private to the partner (task names, compound ids, predictions).

examples:
  fedchem train-local raw/prepared/partner-1
  fedchem train-local raw/prepared/partner-1 --out runs/partner-1-alone --epochs 20 --hidden 1000 --seed 0
"""


RULE_LABEL = {"classification": "AUC-PR", "regression": "RMSE (censor-aware)"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-local", help="train the model on one partner's prepared data alone (the baseline)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prepared_dir", type=Path, metavar="PREPARED_DIR", help="a folder written by `fedchem prepare`")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output folder: new, empty, or a previous train-local output, which is replaced (default: "
                        "PREPARED_DIR-alone beside the prepared folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing folder that is not a train-local output (never one holding the "
                        "prepared dataset or the configs)")
    p.add_argument("--consortium", type=Path, metavar="CONSORTIUM.yaml",
                   help="take the model and training settings from this consortium config")
    p.add_argument("--epochs", type=int, metavar="N", help="maximum number of epochs")
    p.add_argument("--lr", type=float, metavar="LR", help="learning rate (Adam)")
    p.add_argument("--lr-steps", type=int, nargs="*", metavar="EPOCH",
                   help="epochs at which the learning rate is multiplied by --lr-gamma")
    p.add_argument("--lr-gamma", type=float, metavar="G", help="learning-rate decay factor at each step")
    p.add_argument("--batch-size", type=int, metavar="N", help="compounds per batch")
    p.add_argument("--weight-decay", type=float, metavar="W", help="decoupled weight decay")
    p.add_argument("--patience", type=int, metavar="N", help="early-stopping patience in epochs (0: run all epochs)")
    p.add_argument("--validation-fold", type=int, metavar="F", help="fold used for early stopping")
    p.add_argument("--test-fold", type=int, metavar="F", help="held-out fold reported as the test result")
    p.add_argument("--hidden", type=int, nargs="+", metavar="N", help="hidden layer sizes, e.g. --hidden 1000")
    p.add_argument("--dropout", type=float, metavar="P", help="dropout rate")
    p.add_argument("--activation", choices=["relu", "tanh"], help="hidden activation")
    p.add_argument("--input-transform", choices=["none", "binarize", "log1p"], help="transform of the input values")
    p.add_argument("--seed", type=int, metavar="S", help="seed of initialisation, batch order and dropout")
    p.set_defaults(func=_train_local)


def settings(args) -> tuple:
    """ModelConfig and TrainingConfig: defaults, or the consortium's sections, with the flags applied on top."""
    from pydantic import ValidationError

    from fedchem.algo.config import ModelConfig, TrainingConfig

    if args.consortium is not None:
        from fedchem.orchestrator.config import load_consortium
        c = load_consortium(args.consortium)
        mcfg, tcfg = c.model, c.training
    else:
        mcfg, tcfg = ModelConfig(), TrainingConfig()
    m_over = {"hidden_sizes": tuple(args.hidden) if args.hidden else None, "dropout": args.dropout,
              "activation": args.activation, "input_transform": args.input_transform}
    t_over = {"epochs": args.epochs, "learning_rate": args.lr,
              "lr_steps": tuple(args.lr_steps) if args.lr_steps is not None else None, "lr_gamma": args.lr_gamma,
              "batch_size": args.batch_size, "weight_decay": args.weight_decay,
              "early_stopping_patience": args.patience, "validation_fold": args.validation_fold,
              "test_fold": args.test_fold, "seed": args.seed}
    out = []
    for model, base, over in ((ModelConfig, mcfg, m_over), (TrainingConfig, tcfg, t_over)):
        try:
            out.append(model(**{**base.model_dump(), **{k: v for k, v in over.items() if v is not None}}))
        except ValidationError as exc:
            e = exc.errors()[0]
            key = ".".join(str(x) for x in e["loc"])
            raise ConfigError(f"invalid setting {key}: {e['msg']}", where=f"command-line flag for {key}",
                              fix="see `fedchem train-local --help`") from None
    return tuple(out)


def default_out(args) -> Path:
    """--out, else `<PREPARED_DIR>-alone` beside the prepared folder (on the partner's own machine, private)."""
    if args.out is not None:
        return args.out
    prepared = Path(args.prepared_dir).absolute()
    return prepared.with_name(prepared.name + "-alone")


def _train_local(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fedchem.algo.train_local import check_local_out, train_local
    from fedchem.algo.training import keep_freed_memory, set_threads
    from fedchem.opener.dataset import load_prepared

    mcfg, tcfg = settings(args)
    protected = (args.prepared_dir, args.consortium)
    check_local_out(default_out(args), args.overwrite, protected)
    data = load_prepared(args.prepared_dir)
    cores = set_threads()
    keep_freed_memory()  # a step's tensors reuse freed memory instead of faulting fresh pages in (glibc)
    err = Console(stderr=True)
    if not args.quiet:
        err.print(f"train-local: {data.n_compounds:,} compounds, {data.n_features:,} features, "
                  f"{data.Y_class.shape[1]} classification + {data.Y_regr.shape[1]} regression tasks; "
                  f"hidden {list(mcfg.hidden_sizes)}, batch {tcfg.batch_size}, lr {tcfg.learning_rate:g}, "
                  f"{cores} threads")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[info]}"), console=err, transient=True, disable=args.quiet) as bar:
        ids: dict[str, int] = {}

        def report(event: str, info: dict) -> None:
            if event == "epoch_start":
                ids["t"] = bar.add_task(f"epoch {info['epoch']}/{info['epochs']}", total=info["steps"], info="")
            elif event == "step":
                bar.update(ids["t"], completed=info["done"], info=f"loss {info['loss']:.4f}")
            elif event == "epoch_end":
                bar.remove_task(ids["t"])
                figs = info["validation"]["selection"]
                if not args.quiet:
                    shown = "  ".join(f"{RULE_LABEL[k]} {v:.4f}" if v == v else f"{RULE_LABEL[k]} n/a"
                                      for k, v in figs.items())
                    best = f"  *best ({', '.join(info['best_for'])})" if info["best_for"] else ""
                    bar.console.print(f"epoch {info['epoch']:>3}  loss {info['train_loss']:.4f}  "
                                      f"validation {shown}  {info['compounds_per_second']:,.0f} compounds/s{best}")

        run = train_local(data, default_out(args), mcfg, tcfg, report=report, where=str(args.prepared_dir),
                          overwrite=args.overwrite, protected=protected)
    chosen = ", ".join(f"{k} epoch {e}" for k, e in run.selected.items()) or "none"
    print(f"trained alone in {run.seconds:.1f} s: {run.epochs_run} epochs; chosen on validation: {chosen}")
    for split, res in (("validation", run.validation), ("test", run.test)):
        c, r = res.aggregate.get("classification"), res.aggregate.get("regression")
        parts = []
        if c:
            parts.append(f"AUC-ROC {c['auc_roc']:.4f}  AUC-PR {c['auc_pr']:.4f} ({c['n_tasks_counted']} tasks)")
        if r:
            parts.append(f"RMSE {r['rmse']:.4f}  R2 {r['r2']:.4f}  Pearson {r['pearson']:.4f} "
                         f"({r['n_tasks_counted']} tasks)")
        print(f"  {split:<11}{res.n_rows:>7,} compounds  " + "; ".join(parts))
    print(f"  output     {run.out_dir}")
    return 0
