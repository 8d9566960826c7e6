"""Train a small network on an offline data set, writing a checkpoint per epoch."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from brainalign.device import resolve_device
from brainalign.models.base import state_dict_hash
from brainalign.models.train.datasets import augment as augment_batch
from brainalign.models.train.datasets import load_training_data
from brainalign.settings import PathLike

# Architectures whose forward returns class logits (the autoencoder reconstructs instead).
_NOT_CLASSIFIERS = {"conv_autoencoder"}


@dataclass
class TrainResult:
    """What a training run wrote.

    Attributes
    ----------
    run_dir
        The folder with ``epoch_000.pt`` (the initial weights) … ``epoch_<k>.pt``,
        ``history.csv`` and ``run.json``.
    checkpoints
        Checkpoint paths in epoch order, the initial weights first.
    history
        One row per epoch: train / validation loss and accuracy, learning rate, wall and CPU
        seconds of the training steps, samples per second, and the checkpoint's weights hash.
    best_epoch
        The epoch of lowest validation loss.
    stopped_early
        Whether early stopping ended the run before ``epochs``.
    """

    run_dir: Path
    checkpoints: list[Path]
    history: pd.DataFrame
    best_epoch: int
    stopped_early: bool
    config: dict[str, Any] = field(default_factory=dict)


def _save(path: Path, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"state_dict": state, "meta": meta}, tmp)
    os.replace(tmp, path)  # atomic: a crash never leaves half a checkpoint


# What a training run (and `brainalign train --score`) writes into its folder.
_RUN_FILES = ("epoch_*.pt", "history.csv", "run.json", "training_scores.csv", "training_scores.meta.json",
              "training_scores.details", "training.png")


def earlier_run_files(run_dir: PathLike) -> list[Path]:
    """The files of an earlier training run in ``run_dir`` (checkpoints, history, run.json and
    the scores of ``brainalign train --score``), sorted; empty when there is none."""
    folder = Path(run_dir)
    if not folder.is_dir():
        return []
    return sorted({p for pattern in _RUN_FILES for p in folder.glob(pattern)})


def describe_run_files(paths: list[Path]) -> str:
    """``paths`` in a few words: how many checkpoints, and the other files by name."""
    ckpts = [p for p in paths if p.suffix == ".pt"]
    rest = [p.name for p in paths if p.suffix != ".pt"]
    return ", ".join([f"{len(ckpts)} checkpoint(s) epoch_*.pt"] * bool(ckpts) + rest)


def train(
    arch: str = "lenet5",
    out: PathLike = "runs/lenet5-digits",
    *,
    dataset: str = "digits",
    epochs: int = 10,
    batch_size: int = 64,
    optimizer: str = "sgd",
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    dropout: float | None = None,
    augment: bool = True,
    val_fraction: float = 0.2,
    patience: int | None = 3,
    input_size: int = 32,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    arch_options: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train a zoo architecture and write one checkpoint per epoch.

    Parameters
    ----------
    arch
        A classifier of :mod:`brainalign.models.zoo` (``"lenet5"``, ``"mlp"``, ``"gru_rows"``,
        ``"vit"``, ``"resnet"``, …).
    out
        Run folder; checkpoints ``epoch_000.pt`` (initial weights) … are written there, each
        ``{"state_dict", "meta"}`` and loadable with ``load_model("file:<path>")``.
    dataset
        ``"digits"`` (scikit-learn's handwritten digits; no download).
    epochs, batch_size
        Passes over the training split; samples per step.
    optimizer
        ``"sgd"`` (with ``momentum``, Nesterov) or ``"adam"`` (AdamW: decoupled ``weight_decay``).
    lr, momentum, weight_decay
        Optimiser settings; the learning rate follows a cosine schedule over ``epochs``.
    dropout
        Dropout probability, for architectures that have dropout layers.
    augment
        Random affine jitter (±10 % shift and scale, ±10° rotation) of training images.
    val_fraction
        Share of the data held out (stratified by class, fixed by ``seed``) for validation.
    patience
        Stop after this many epochs without a lower validation loss (``None``: never).
    input_size
        Side of the square input; the digits are resized to it.
    seed
        Fixes initial weights, split, batch order, augmentation and dropout: two runs with the
        same arguments write identical weights. The global RNG is left untouched.
    device
        Where to train.
    progress
        Show a progress bar with loss and accuracy.
    overwrite
        ``out`` may hold an earlier run: its files (:func:`earlier_run_files`) are deleted before
        training, so no stale checkpoint of it is mixed with this run's. Without it such a
        folder is refused.

    Returns
    -------
    TrainResult
    """
    from brainalign.models.registry import load_model
    from brainalign.models.zoo import ZOO, options_of

    if arch not in ZOO or arch in _NOT_CLASSIFIERS:
        from brainalign.errors import UnknownModelError

        raise UnknownModelError(f"zoo:{arch}", [f"zoo:{k}" for k in ZOO if k not in _NOT_CLASSIFIERS])
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', not {optimizer!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    dev = resolve_device(device)
    data = load_training_data(dataset, input_size)
    opts: dict[str, Any] = {"in_channels": data.x.shape[1], "input_size": input_size,
                            "num_classes": data.num_classes, **(arch_options or {})}
    if dropout is not None:
        if "dropout" not in options_of(arch):
            raise ValueError(f"zoo:{arch} has no dropout layers; leave dropout unset")
        opts["dropout"] = dropout
    run_dir = Path(out)
    old = earlier_run_files(run_dir)
    if old and not overwrite:
        from brainalign.errors import RunFolderError

        raise RunFolderError(f"{run_dir} holds an earlier training run ({describe_run_files(old)}); "
                             f"choose another folder, or overwrite=True (--overwrite) to replace it")
    for path in old:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"arch": f"zoo:{arch}", "arch_options": opts, "dataset": dataset,
              "data_hash": data.content_hash, "epochs": epochs, "batch_size": batch_size,
              "optimizer": optimizer, "lr": lr, "momentum": momentum, "weight_decay": weight_decay,
              "augment": augment, "val_fraction": val_fraction, "patience": patience, "seed": seed,
              # the normalisation the network learnt with, which loading the checkpoint reuses
              "preprocessing": {"mean": list(data.mean), "std": list(data.std)}}

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)  # dropout draws from the global RNG, forked here
        gen = torch.Generator().manual_seed(seed)
        model = load_model(f"zoo:{arch}", seed=seed, **opts)
        net = model.module.to(dev)
        train_idx, val_idx = _stratified_split(data.y, val_fraction, gen)
        config.update(n_train=len(train_idx), n_val=len(val_idx))
        x_tr, y_tr = data.x[train_idx].to(dev), data.y[train_idx].to(dev)
        x_va, y_va = data.x[val_idx].to(dev), data.y[val_idx].to(dev)
        if optimizer == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(
                net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                nesterov=momentum > 0)
        else:
            opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))

        def checkpoint(epoch: int, row: dict[str, Any]) -> Path:
            state = {k: v.detach().to("cpu").clone() for k, v in net.state_dict().items()}
            path = run_dir / f"epoch_{epoch:03d}.pt"
            row["weights_hash"] = state_dict_hash(net)
            meta = {**config, "name": f"{arch}-{dataset}", "epoch": epoch, "metrics": dict(row)}
            _save(path, state, meta)
            return path

        va_loss, va_acc = _evaluate(net, x_va, y_va)
        rows = [{"epoch": 0, "train_loss": float("nan"), "train_acc": float("nan"),
                 "val_loss": va_loss, "val_acc": va_acc, "lr": lr, "seconds": 0.0,
                 "cpu_seconds": 0.0, "samples_per_s": float("nan")}]
        paths = [checkpoint(0, rows[0])]
        best, best_epoch, waited, stopped = va_loss, 0, 0, False
        n = len(y_tr)
        bar = tqdm(range(1, epochs + 1), desc=f"train {arch}", unit="epoch", disable=not progress)
        for epoch in bar:
            net.train()
            t0, c0 = time.perf_counter(), time.process_time()
            order = torch.randperm(n, generator=gen)
            total_loss = torch.zeros((), device=dev)
            correct = torch.zeros((), dtype=torch.long, device=dev)
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size].to(dev)
                xb, yb = x_tr[idx], y_tr[idx]
                if augment:
                    xb = augment_batch(xb, gen)
                logits = net(xb)
                loss = F.cross_entropy(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                # Accumulated on the device: no synchronisation per step.
                total_loss += loss.detach() * len(yb)
                correct += (logits.detach().argmax(1) == yb).sum()
            epoch_lr = opt.param_groups[0]["lr"]  # the rate this epoch trained at (step() sets the next one's)
            sched.step()
            seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
            va_loss, va_acc = _evaluate(net, x_va, y_va)
            row = {"epoch": epoch, "train_loss": total_loss.item() / n,
                   "train_acc": correct.item() / n, "val_loss": va_loss, "val_acc": va_acc,
                   "lr": epoch_lr, "seconds": seconds, "cpu_seconds": cpu_seconds,
                   "samples_per_s": n / seconds}
            paths.append(checkpoint(epoch, row))
            rows.append(row)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_acc']:.3f}",
                            val_loss=f"{va_loss:.3f}", val_acc=f"{va_acc:.3f}")
            if va_loss < best:
                best, best_epoch, waited = va_loss, epoch, 0
            else:
                waited += 1
                if patience is not None and waited >= patience:
                    stopped = True
                    break
        bar.close()
    history = pd.DataFrame(rows)
    history.to_csv(run_dir / "history.csv", index=False)
    (run_dir / "run.json").write_text(json.dumps(
        {**config, "best_epoch": best_epoch, "stopped_early": stopped,
         "checkpoints": [p.name for p in paths]}, indent=2))
    return TrainResult(run_dir, paths, history, best_epoch, stopped, config)


def _stratified_split(y: torch.Tensor, fraction: float, gen: torch.Generator
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a train / validation split holding out ``fraction`` of every class."""
    train, val = [], []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        k = max(1, round(len(idx) * fraction))
        val.append(idx[:k])
        train.append(idx[k:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def _evaluate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
              batch_size: int = 512) -> tuple[float, float]:
    net.eval()
    loss, correct = 0.0, 0
    with torch.inference_mode():
        for s in range(0, len(y), batch_size):
            logits = net(x[s:s + batch_size])
            loss += F.cross_entropy(logits, y[s:s + batch_size], reduction="sum").item()
            correct += int((logits.argmax(1) == y[s:s + batch_size]).sum())
    return loss / len(y), correct / len(y)
