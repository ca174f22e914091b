"""Keras Tuner search over the structured self-attention settings.

Searches the hops r, the attention width d_a, the penalty weight λ and the
learning rate on validation accuracy. The search state lives in
`<workdir>/tune/<algorithm>-<digest>/`, named by everything else that shapes
a trial (data settings and examples, encoder and training settings, epochs
per trial), so an
interrupted search resumes where it stopped and a changed setting starts
its own search instead of ranking trials of two kinds. The best settings
are written as a config file `train-encoder` accepts.
"""

import copy
import os

import keras
import keras_tuner as kt

from sagan_tf.data import pipeline
from sagan_tf.digests import config_digest, dataset_digest
from sagan_tf.training import encoder_training

HOPS = (1, 2, 4, 8, 16, 30)
ATTENTION_UNITS = (64, 128, 256, 350)
PENALTY_WEIGHTS = (0.0, 0.1, 0.3, 1.0)
OBJECTIVE = kt.Objective("val_accuracy", direction="max")


class EncoderHyperModel(kt.HyperModel):
    """Builds a CaptionClassifier for one point of the search space."""

    def __init__(self, config, dataset, vocab_size, decay_steps=0):
        super().__init__(name="self_attention_encoder")
        self.config = config
        self.dataset = dataset
        self.vocab_size = vocab_size
        self.decay_steps = decay_steps

    def build(self, hp):
        encoder_config = copy.copy(self.config.encoder)
        encoder_config.kind = "self_attention"
        encoder_config.hops = hp.Choice("hops", HOPS)
        encoder_config.attention_units = hp.Choice("attention_units", ATTENTION_UNITS)
        penalty_weight = hp.Choice("penalty_weight", PENALTY_WEIGHTS)
        learning_rate = hp.Float("learning_rate", 1e-4, 3e-3, sampling="log")
        encoder = encoder_training.build_encoder(encoder_config, self.vocab_size)
        classifier = encoder_training.make_classifier(self.config, self.dataset, encoder, penalty_weight)
        return encoder_training.compile_classifier(classifier, learning_rate,
                                                   self.config.encoder_train.weight_decay, self.decay_steps)


def search_name(config, dataset, algorithm, epochs):
    """The search's folder under tune/: the algorithm and a digest of what the search leaves fixed."""
    digest = config_digest(
        config.data, dataset_digest(dataset), epochs, config.encoder, config.encoder_train,
        ignore=("kind", "hops", "attention_units", "penalty_weight",  # encoder: searched or fixed by it
                "learning_rate", "epochs", "cache_embeddings"))       # encoder_train
    return f"{algorithm}-{digest}"


def make_tuner(workdir, config, dataset, vocab_size, max_trials, algorithm, epochs, decay_steps=0):
    hypermodel = EncoderHyperModel(config, dataset, vocab_size, decay_steps)
    # Keras Tuner takes a seed of 0 for "none" and draws a random one, so data.seed 0 becomes 1.
    common = dict(objective=OBJECTIVE, directory=os.path.join(workdir.path, "tune"),
                  project_name=search_name(config, dataset, algorithm, epochs), overwrite=False,
                  seed=config.data.seed + 1)
    if algorithm == "random":
        return kt.RandomSearch(hypermodel, max_trials=max_trials, **common)
    tuner = kt.Hyperband(hypermodel, max_epochs=epochs, factor=3, **common)
    # Hyperband sizes its brackets from max_epochs; this also caps the trial count.
    tuner.oracle.max_trials = max_trials
    return tuner


def search(workdir, config, dataset, max_trials, algorithm="random", epochs=None, verbose=1):
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs per trial must be at least 1, got {epochs}")
    epochs = epochs or config.encoder_train.epochs
    # Adapted afresh (deterministic from the data), never the workdir encoder's, which may be of other data.
    tokenizer = encoder_training.adapted_tokenizer(config, dataset)
    auxiliary = encoder_training.uses_auxiliary_attributes(config, dataset)
    train = encoder_training.caption_arrays(tokenizer, dataset.splits["train"], auxiliary)
    validation = encoder_training.caption_arrays(tokenizer, dataset.splits["validation"], auxiliary)
    batch = config.encoder_train.batch_size
    # Under cosine_decay every trial anneals over the search's epoch budget.
    decay_steps = encoder_training.cosine_decay_steps(config.encoder_train, len(train[1]), epochs)
    tuner = make_tuner(workdir, config, dataset, tokenizer.vocabulary_size, max_trials, algorithm, epochs,
                       decay_steps)
    tuner.search(
        pipeline.encoder_dataset(*train, batch, seed=config.data.seed),
        validation_data=pipeline.encoder_dataset(*validation, batch, shuffle=False),
        epochs=epochs, verbose=verbose, shuffle=False,
        callbacks=[keras.callbacks.EarlyStopping("val_accuracy", mode="max",
                                                 patience=config.encoder_train.patience),
                   *encoder_training.learning_rate_schedule(config.encoder_train)])
    trials = [{"trial": t.trial_id, "status": t.status, "score": t.score, **t.hyperparameters.values}
              for t in tuner.oracle.trials.values()]
    scores = [t["score"] for t in trials if t["score"] is not None]
    if not scores:
        # Keras Tuner counts failed trials against max_trials, so a rerun would not retry.
        raise ValueError(f"no trial of the search in {tuner.project_dir} finished "
                         f"({len(trials)} failed); fix the cause, then delete that folder to search again")
    best = tuner.get_best_hyperparameters(1)[0].values
    best_config = copy.deepcopy(config)
    best_config.encoder.kind = "self_attention"
    best_config.encoder.hops = best["hops"]
    best_config.encoder.attention_units = best["attention_units"]
    best_config.encoder.penalty_weight = float(best["penalty_weight"])
    best_config.encoder_train.learning_rate = float(best["learning_rate"])
    path = os.path.join(workdir.path, "tune", "best.yaml")
    best_config.save(path)
    return {"trials": trials, "best": best, "best_score": max(scores), "config": path}


def format_table(trials):
    columns = ("trial", "status", "score", "hops", "attention_units", "penalty_weight", "learning_rate")
    rows = [[_cell(t.get(c)) for c in columns] for t in sorted(trials, key=lambda t: int(t["trial"]))]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
