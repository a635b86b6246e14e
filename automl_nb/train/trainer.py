"""``run_trial``: one training run, start to finish, written to its trial folder.

The loop is task-agnostic: a task adapter (see :mod:`automl_nb.train.classification`)
supplies datasets, the model, the loss and the scores. The loop owns the optimizer,
schedule, mixed precision, gradient accumulation, evaluation cadence, early stopping,
checkpoints and reporting. On a rank of a data-parallel trial (``distributed: true``) it asks its
``ranks`` (:mod:`automl_nb.train.ranks`) what differs: the DDP wrapper, this rank's batches, the
sums over ranks, and rank 0's verdict; only rank 0 writes and reports.
"""

from __future__ import annotations

import math
import os
import random
import time
import traceback
import zlib
from contextlib import nullcontext
from typing import Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from automl_nb.data.cache import chunk_sampler
from automl_nb.errors import TrialError
from automl_nb.spec.table import PARAMETERS
from automl_nb.train.early_stopping import EarlyStopping, early_stopping_delay
from automl_nb.train.evaluate import evaluate_model
from automl_nb.train.folder import BEST_CHECKPOINT, LAST_CHECKPOINT, TrialFolder, epoch_checkpoint, load_checkpoint_file
from automl_nb.train.optim import build_optimizer, build_scheduler
from automl_nb.train.ranks import SingleProcess
from automl_nb.train.setup import freeze_layers, make_adapter, resolve_trial_parameters
from automl_nb.train.trial import NullReporter, Reporter, Trial, TrialResult


def run_trial(trial: Trial, reporter: Reporter | None = None) -> TrialResult:
    """Train and evaluate one model as ``trial`` says, writing its folder as it goes.

    Args:
        trial: what to train on what, and where to write.
        reporter: receives each evaluation's metrics and may stop the trial.

    With ``distributed: true`` and more than one device here
    (:func:`~automl_nb.train.distributed.processes_for_trial`), DDP processes started from this
    one train the trial (:mod:`automl_nb.train.distributed`); this process relays their reports.

    Returns:
        How the trial ended.

    Raises:
        SpecError: invalid training parameters (before any work).
        DataError: invalid data (before training).
        TrialError: e.g. pretrained weights unavailable, or the loss became non-finite.
        Any error is also recorded in ``status.json`` as Failed with its traceback.
    """
    folder = TrialFolder(trial.output_dir)
    folder.path.mkdir(parents=True, exist_ok=True)
    try:
        params = resolve_trial_parameters(trial)
        if params["distributed"]:
            from automl_nb.train.distributed import processes_for_trial, run_distributed_trial

            processes = processes_for_trial()
            if processes > 1:  # one device: the ordinary loop, no process group to pay for
                return run_distributed_trial(trial, reporter or NullReporter(), processes)
        return _Training(trial, params, folder, reporter or NullReporter()).run()
    except KeyboardInterrupt:
        folder.write_status("Canceled", reason="interrupted")
        raise
    except Exception as error:
        folder.write_status("Failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
        raise


def run_trial_rank(trial: Trial, reporter: Reporter, ranks) -> TrialResult:
    """Run ``trial`` as one rank of a data-parallel trial (see :mod:`automl_nb.train.distributed`).

    Only rank 0 writes the trial folder and calls ``reporter``; an error is raised, not recorded:
    the process that started the ranks records it.

    Args:
        trial: the trial, as every rank gets it.
        reporter: rank 0's reporter (the other ranks' is never called).
        ranks: a :class:`~automl_nb.train.ranks.ProcessGroup` of an initialised process group.
    """
    return _Training(trial, resolve_trial_parameters(trial), TrialFolder(trial.output_dir), reporter, ranks).run()


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (model initialisation draws from torch's global generator)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def random_state() -> dict:
    """This process's global random streams (torch's CPU one, numpy's, Python's), as a resume point keeps them."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def rank_random_state(saved: Mapping, rank: int, world_size: int) -> Mapping | None:
    """The random state that rank ``rank`` of ``world_size`` resumes with, from a resume point's ``rng``.

    Each rank draws its own augmentations, so each resumes its own stream (``saved["ranks"]``). Rank
    0's is also ``saved`` itself (so a resume point made before ranks kept theirs still serves it);
    None: a resume point made by another number of ranks, for a rank above 0.
    """
    ranks = saved.get("ranks")
    if ranks is not None and len(ranks) == world_size:
        return ranks[rank]
    return saved if rank == 0 else None


def effective_seed(trial: Trial, params: Mapping) -> int:
    """The user's ``random_seed``, else one derived from the trial id (stable across retries)."""
    if params["random_seed"] is not None:
        return int(params["random_seed"])
    return zlib.crc32(trial.trial_id.encode())


class _Training:
    """State of one run of the loop; built by :func:`run_trial` (or :func:`run_trial_rank` on each rank)."""

    def __init__(self, trial: Trial, params: dict, folder: TrialFolder, reporter: Reporter,
                 ranks: SingleProcess | None = None) -> None:
        self.trial, self.params, self.folder, self.reporter = trial, params, folder, reporter
        self.ranks = ranks or SingleProcess()
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        # cuDNN's autotuner picks kernels by timing, which breaks bit-exact repeats: use it
        # only when the user asked for no seed.
        self.autotune = params["random_seed"] is None
        self.seed = effective_seed(trial, params)
        self.params["random_seed"] = self.seed  # params.json records the seed actually used
        seed_everything(self.seed)
        self.adapter = make_adapter(trial, params, self.seed)
        self.adapter.to(self.device)
        # network: the model itself (evaluated, saved); model: what trains (DDP's wrapper on ranks).
        self.network = self.model = self.adapter.build_model(bool(params["use_pretrained_model"]))
        self.frozen = freeze_layers(self.network, params)
        self._load_initial_checkpoint()
        self.memory_format = torch.contiguous_format
        if self.device.type == "cuda":
            # channels_last speeds up convolutions on tensor cores by ~20%.
            self.memory_format = torch.channels_last
            torch.backends.cudnn.benchmark = self.autotune
        self.network.to(self.device, memory_format=self.memory_format)
        self.model = self.ranks.wrap(self.network)
        if self.ranks.rank:
            # Other ranks draw other augmentations; rank 0 keeps the one-process trial's draws.
            seed_everything(self.seed + self.ranks.rank)
        self.train_loader, self.valid_loader = self._loaders()
        self.accumulate = params["gradient_accumulation_step"]
        self.steps_per_epoch = math.ceil(len(self.train_loader) / self.accumulate)
        self.optimizer = build_optimizer(self.model.parameters(), params)
        self.scheduler, self.schedule_every = build_scheduler(self.optimizer, params, self.steps_per_epoch)
        self.amp_dtype = None
        if self.device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        # bf16 keeps fp32's range, so only fp16 needs loss scaling.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        # early_stopping_tolerance is resolved only with SageMaker keys; else its default applies.
        tolerance = params.get("early_stopping_tolerance", PARAMETERS["early_stopping_tolerance"].default)
        self.stopper = EarlyStopping(params["early_stopping_patience"], early_stopping_delay(params), tolerance)
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.start_epoch = 1
        self.started = time.time()

    # -- set-up -------------------------------------------------------------------------
    def _loaders(self) -> tuple[DataLoader, DataLoader]:
        workers = self.params["number_of_workers"]
        if workers is None:  # auto: on CPU, loader processes would steal the training cores
            workers = min(4, os.cpu_count() or 1) if self.device.type == "cuda" else 0
        common = {"num_workers": workers, "pin_memory": self.device.type == "cuda",
                  "persistent_workers": workers > 0, "collate_fn": self.adapter.collate}
        if workers > 0:
            common["worker_init_fn"] = _seed_worker
        train_set = self.adapter.train_dataset
        batch = self.params["training_batch_size"]
        generator = torch.Generator().manual_seed(self.seed)
        # Images streamed through the cache are read a chunk at a time (see chunk_sampler).
        sampler = chunk_sampler(train_set, generator)
        if self.ranks.world_size > 1:  # each rank takes its slice of each global batch
            order = sampler if sampler is not None else RandomSampler(train_set, generator=generator)
            train = DataLoader(train_set, batch_sampler=self.ranks.batch_sampler(order, batch), generator=generator,
                               **common)
        else:
            # A last batch of one image breaks batch norm in training mode: drop it.
            train = DataLoader(train_set, batch_size=batch, shuffle=sampler is None, sampler=sampler,
                               generator=generator, drop_last=len(train_set) % batch == 1 and len(train_set) > 1,
                               **common)
        valid = DataLoader(self.adapter.valid_dataset, batch_size=self.params["validation_batch_size"], **common)
        return train, valid

    def _load_initial_checkpoint(self) -> None:
        source = self.params["checkpoint_run_id"]
        if not source:
            return
        path = TrialFolder(source).best_checkpoint if os.path.isdir(source) else source
        if not os.path.exists(path):
            raise TrialError(f"checkpoint_run_id: {source!r} is neither a trial folder with "
                             f"{BEST_CHECKPOINT} nor a checkpoint file")
        state = load_checkpoint_file(path)
        if not isinstance(state.get("model"), dict):
            raise TrialError(f"checkpoint_run_id: {path} holds no model weights (no 'model' state dict)")
        state = state["model"]
        own = self.network.state_dict()
        # Incremental training may change the classes: keep only tensors whose shape fits.
        fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        self.network.load_state_dict(fitting, strict=False)

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> TrialResult:
        writes = self.ranks.writes  # rank 0 of a data-parallel trial, or the one process
        if self.trial.resume and self.folder.has_resume_point():
            self._resume()
        elif writes:
            self.folder.clear_metrics()
        if writes:
            self._write_description()
            self.folder.write_status("Running", epoch=self.start_epoch - 1, started=self.started)
        status, stopped_early, row, epoch = "Completed", False, {}, self.start_epoch - 1
        last_epoch = self.params["number_of_epochs"]
        for epoch in range(self.start_epoch, last_epoch + 1):
            train_loss, train_scores, images_per_second = self._train_epoch(epoch)
            if self.schedule_every == "epoch":
                self.scheduler.step()
            if not self._evaluates_at(epoch):
                continue
            canceled = False
            if writes:  # the other ranks wait for rank 0's verdict below
                row = self._evaluate(epoch, train_loss, train_scores, images_per_second)
                metric = row.get(self.adapter.primary_metric)
                if self.params["early_stopping"] and metric is not None and self.stopper.update(metric):
                    stopped_early = True
            # Every rank's random streams as they are now (rank 0's after validating), for the resume point.
            random_states = self.ranks.gather([random_state()])
            if writes and not (stopped_early or epoch == last_epoch):
                # Resume points sit at evaluations, where metrics.jsonl has its rows.
                self._save_last(epoch, random_states)
                self.folder.write_status("Running", epoch=epoch, best_metric=self.best_metric, started=self.started)
                canceled = self.reporter.should_stop()
            stopped_early, canceled = self.ranks.verdict(stopped_early, canceled)
            if stopped_early or epoch == last_epoch:
                break  # complete: a stop asked for now comes too late to matter
            if canceled:
                status = "Canceled"
                break
        return self._finish(status, stopped_early, epoch, row)

    def _evaluates_at(self, epoch: int) -> bool:
        return epoch % self.params["evaluation_frequency"] == 0 or epoch == self.params["number_of_epochs"]

    def _train_epoch(self, epoch: int) -> tuple[float, dict, float]:
        self.model.train()
        for name, module in self.network.named_modules():
            if name and (name + ".").startswith(self.frozen):
                module.eval()  # frozen layers keep their batch-norm statistics too
        keep_outputs = bool(self.params["log_training_metrics"])
        outputs, targets = [], []
        total_loss = torch.zeros((), device=self.device)
        seen, started = 0, time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        batches = len(self.train_loader)
        for i, batch in enumerate(self.train_loader):
            steps = (i + 1) % self.accumulate == 0 or i + 1 == batches
            with self.ranks.skip_sync(self.model, steps):  # DDP averages gradients at each step's last batch
                with self._autocast():
                    loss, logits, target = self.adapter.forward_loss(self.model, batch, self.device,
                                                                     self.memory_format)
                self.scaler.scale(loss / self.accumulate).backward()
            if steps:
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                if self.schedule_every == "batch":
                    self.scheduler.step()
            size = len(target)
            total_loss += loss.detach() * size
            seen += size
            if keep_outputs and logits is not None:  # detectors return no per-image outputs in training
                outputs.append(logits.detach().float().cpu())
                targets.append(target.cpu())
        total, seen = self.ranks.sum(total_loss, seen)  # every rank's images
        mean_loss = total / max(seen, 1)
        if not math.isfinite(mean_loss):
            raise TrialError(f"training loss became {mean_loss} in epoch {epoch}; "
                             f"try a lower learning_rate (now {self.params['learning_rate']})")
        if keep_outputs:
            outputs, targets = self.ranks.gather(outputs), self.ranks.gather(targets)
        scores = self.adapter.score(torch.cat(outputs), torch.cat(targets)) if outputs else {}
        return mean_loss, scores, seen / (time.perf_counter() - started)

    def _evaluate(self, epoch: int, train_loss: float, train_scores: dict, images_per_second: float) -> dict:
        per_image: list = []  # each image's outputs, from this same pass, for predictions.jsonl
        valid_loss, scores = evaluate_model(self.network, self.valid_loader, self.adapter, self.device,
                                            self.memory_format, self._autocast, keep=per_image)
        primary = self.adapter.primary_metric
        row = {"epoch": epoch, "train_loss": train_loss, "validation_loss": valid_loss,
               "learning_rate": self.optimizer.param_groups[0]["lr"],
               "train_images_per_second": images_per_second,
               "elapsed_seconds": time.time() - self.started}
        row.update({k: v for k, v in scores.items() if isinstance(v, float)})
        row.update({f"train_{k}": v for k, v in train_scores.items() if isinstance(v, float)})
        self.folder.append_metrics(row)
        self.reporter.report(epoch, row)
        value = row.get(primary)  # None with validation_metric_type none: the latest model is the best
        if value is None or self.best_metric is None or value > self.best_metric:
            self.best_metric, self.best_epoch = value, epoch
            self.folder.save_checkpoint(BEST_CHECKPOINT, self._model_state(epoch))
            self.folder.write_evaluation({"epoch": epoch, **scores, "labels": self.adapter.classes})
            self._write_predictions(per_image)
        frequency = self.params["checkpoint_frequency"]
        if frequency and epoch % frequency == 0:
            self.folder.save_checkpoint(epoch_checkpoint(epoch), self._model_state(epoch))
        return row

    # -- files --------------------------------------------------------------------------
    def _write_predictions(self, per_image: list) -> None:
        # Imported here: the analysis package sits above train (layer test: allowed, this call only).
        from automl_nb.analysis.predictions import prediction_rows, write_predictions

        write_predictions(self.folder.path, prediction_rows(per_image, self.adapter.classes))

    def _model_state(self, epoch: int) -> dict:
        return {"model": self.network.state_dict(), "epoch": epoch, "task": self.trial.task,
                "params": self.params, "labels": self.adapter.classes, "metric": self.best_metric}

    def _save_last(self, epoch: int, random_states: list[dict]) -> None:
        """The resume point; ``random_states``: each rank's :func:`random_state`, rank 0's first."""
        state = self._model_state(epoch)
        state.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                     scaler=self.scaler.state_dict(), stopper=self.stopper.state_dict(),
                     best_metric=self.best_metric, best_epoch=self.best_epoch,
                     rng={**random_states[0], "ranks": random_states, "loader": self.train_loader.generator.get_state()})
        self.folder.save_checkpoint(LAST_CHECKPOINT, state)

    def _resume(self) -> None:
        state = self.folder.load_checkpoint(LAST_CHECKPOINT, self.device)
        self.network.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.stopper.load_state_dict(state["stopper"])
        self.best_metric, self.best_epoch = state["best_metric"], state["best_epoch"]
        own = rank_random_state(state["rng"], self.ranks.rank, self.ranks.world_size)
        if own is None:  # saved by another number of ranks: this rank's own stream, new
            seed_everything(self.seed + self.ranks.rank + 7919 * state["epoch"])
        else:
            torch.set_rng_state(own["torch"].cpu())
            np.random.set_state(own["numpy"])
            random.setstate(own["python"])
        self.train_loader.generator.set_state(state["rng"]["loader"].cpu())
        self.start_epoch = state["epoch"] + 1
        if self.ranks.writes:
            self.folder.truncate_metrics(state["epoch"])

    def _write_description(self) -> None:
        self.folder.write_description(self.trial, self.params)
        self.folder.write_labels(self.adapter.classes)
        self.folder.write_settings(self.adapter.settings())

    def _finish(self, status: str, stopped_early: bool, epoch: int, row: dict) -> TrialResult:
        if status == "Completed" and self.ranks.writes:
            self.folder.remove_resume_point()  # from a resumed run
        result = TrialResult(
            trial_id=self.trial.trial_id, status=status, primary_metric=self.adapter.primary_metric,
            best_metric=self.best_metric, best_epoch=self.best_epoch, epochs_completed=epoch,
            output_dir=str(self.folder.path), stopped_early=stopped_early, last_metrics=row)
        if not self.ranks.writes:
            return result
        self.folder.write_status(status, epoch=epoch, best_metric=self.best_metric, best_epoch=self.best_epoch,
                                 stopped_early=stopped_early, started=self.started, ended=time.time())
        return result


def _seed_worker(worker_id: int) -> None:
    # Each loader process gets a seed derived from the loader's, so augmentations repeat.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
