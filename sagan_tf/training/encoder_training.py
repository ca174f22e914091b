"""Pre-training the text encoder as a caption → class classifier.

Everything lands in `<workdir>/encoder/`: the tokenizer (vocab.txt), the
trained encoder without its head (`encoder.keras`) with a metadata file that
ties it to its vocabulary, the best classifier checkpoint, a backup for
resuming, the training history and, optionally, the cached sentence vectors
of every caption for the GAN stage.
"""

import glob
import hashlib
import math
import os
import time

import keras
import numpy as np

from sagan_tf import files
from sagan_tf.data import pipeline
from sagan_tf.data import shapes_grammar as grammar
from sagan_tf.digests import config_digest, dataset_digest, weights_digest
from sagan_tf.models.caption_classifier import CaptionClassifier
from sagan_tf.models.text_encoder import TextEncoder
from sagan_tf.text.tokenizer import PAD_ID, CaptionTokenizer, VocabularyMismatchError
from sagan_tf.training.callbacks import AtomicBackupAndRestore, GracefulTermination, KeepBest

ENCODER_FILE = "encoder.keras"
METADATA_FILE = "encoder.json"
EMBEDDINGS_FILE = "sentence_vectors-{split}.npz"


def build_encoder(encoder_config, vocab_size):
    return TextEncoder(
        vocab_size=vocab_size, kind=encoder_config.kind,
        embedding_dim=encoder_config.embedding_dim, lstm_units=encoder_config.lstm_units,
        hops=encoder_config.hops, attention_units=encoder_config.attention_units,
        hidden_units=encoder_config.hidden_units, output_dim=encoder_config.output_dim,
        dropout=encoder_config.dropout)


def backup_digest(config, data_id):
    """Names the backup of an encoder run: everything that shapes the weights.

    How long to train is left out, so more epochs continue the backed-up run;
    a change of data, architecture or optimiser setting starts its own.
    """
    return config_digest(config.data, config.encoder, config.encoder_train, data_id,
                         ignore=("epochs", "patience", "cache_embeddings"))


def run_file(encoder_dir, folder, name):
    """`<encoder_dir>/<folder>/<name>`, the folder made: one file per run, named by its backup digest."""
    os.makedirs(os.path.join(encoder_dir, folder), exist_ok=True)
    return os.path.join(encoder_dir, folder, name)


def read_metadata(workdir):
    """The workdir's encoder.json (what the saved encoder was trained on), or None."""
    path = os.path.join(workdir.encoder_dir, METADATA_FILE)
    if not os.path.isfile(path):
        return None
    return files.read_json(path, "encoder metadata file", required=("vocabulary_fingerprint",))


def adapted_tokenizer(config, dataset):
    """A tokenizer adapted to the training captions under the `data` settings (deterministic)."""
    return CaptionTokenizer.adapt(dataset.captions("train"), config.data.max_length, config.data.min_word_count)


# The attributes a caption names beside its (shape, colour) class.
AUXILIARY_ATTRIBUTES = {name: grammar.ATTRIBUTES[name] for name in ("background", "size", "position")}


def caption_arrays(tokenizer, examples, auxiliary=False):
    """(token ids int32 [C, L], labels int32 [C]) of every caption of `examples`;
    with `auxiliary`, labels are [C, 4]: class, background, size, position."""
    index = pipeline.CaptionIndex.from_examples(examples)
    if not index.texts:
        shape = (0, 1 + len(AUXILIARY_ATTRIBUTES)) if auxiliary else (0,)
        return np.zeros((0, tokenizer.max_length), np.int32), np.zeros(shape, np.int32)
    ids = tokenizer.ids(index.texts)
    labels = index.labels.astype(np.int32)
    if auxiliary:
        attributes = [a for example in examples for a in example.attributes]
        columns = [[names.index(a[key]) for a in attributes] for key, names in AUXILIARY_ATTRIBUTES.items()]
        labels = np.stack([labels, *columns], axis=1).astype(np.int32)
    return ids, labels


def uses_auxiliary_attributes(config, dataset):
    if config.encoder_train.auxiliary_attributes and dataset.name != "shapes":
        raise ValueError("encoder_train.auxiliary_attributes needs the shapes data set (caption attributes)")
    return config.encoder_train.auxiliary_attributes


def make_classifier(config, dataset, encoder, penalty_weight):
    """The pre-training classifier, with the auxiliary attribute heads when configured."""
    auxiliary = ([len(names) for names in AUXILIARY_ATTRIBUTES.values()]
                 if uses_auxiliary_attributes(config, dataset) else ())
    return CaptionClassifier(encoder, dataset.num_classes, penalty_weight, auxiliary_classes=auxiliary,
                             label_smoothing=config.encoder_train.label_smoothing)


def main_labels(labels):
    return labels[:, 0] if labels.ndim == 2 else labels


def compile_classifier(classifier, learning_rate, weight_decay=0.0, decay_steps=0):
    """Adam; `decay_steps` > 0 anneals the rate to 0 on a cosine over that many steps."""
    if decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    # Keras applies `weight_decay` decoupled from the gradient (AdamW).
    classifier.compile(optimizer=keras.optimizers.Adam(learning_rate, weight_decay=weight_decay or None))
    return classifier


def cosine_decay_steps(train_config, num_train, epochs=None):
    """Optimizer steps of the whole run when `encoder_train.cosine_decay` is on, else 0."""
    if not train_config.cosine_decay:
        return 0
    return (epochs or train_config.epochs) * math.ceil(num_train / train_config.batch_size)


def learning_rate_schedule(train_config):
    """[ReduceLROnPlateau] when `encoder_train.lr_decay_patience` asks for it, else []."""
    if not train_config.lr_decay_patience:
        return []
    return [keras.callbacks.ReduceLROnPlateau(
        "val_accuracy", mode="max", factor=1 / 3, patience=train_config.lr_decay_patience, verbose=0)]


def train_encoder(workdir, config, dataset, verbose=1, extra_callbacks=()):
    """Pre-trains the configured encoder; returns a dict of results.

    With `encoder_train.cache_embeddings` (and images) it then caches the
    sentence vectors of every split for the GAN stage.
    """
    result = _train_encoder(workdir, config, dataset, verbose, extra_callbacks)
    if config.encoder_train.cache_embeddings and not config.data.captions_only:
        encoder, tokenizer = load_frozen_encoder(workdir)
        for split, examples in dataset.splits.items():
            if examples:
                cached_sentence_vectors(workdir, encoder, tokenizer, examples, split)
    return result


def _train_encoder(workdir, config, dataset, verbose, extra_callbacks):
    encoder_dir = workdir.encoder_dir
    data_id = dataset_digest(dataset)
    settings = config_digest(config.data, config.encoder, config.encoder_train, data_id)
    saved = read_metadata(workdir)
    results_path = os.path.join(encoder_dir, "results.json")
    if saved and saved.get("settings") == settings and os.path.isfile(results_path):
        print(f"the encoder in {encoder_dir} is already trained with these settings; "
              f"delete {encoder_dir} to train it again")
        return files.read_json(results_path, "encoder results file")
    refuse_to_orphan_the_gan(workdir, config, saved)
    if dataset.num_classes < 2:
        raise ValueError(
            f"encoder pre-training classifies captions by class and needs at least two classes; the "
            f"{dataset.name} data set has {dataset.num_classes}"
            + (" (list them in classes.txt beside images/ and captions/: one '<image name> <class>' per line)"
               if dataset.name == "folder" else ""))
    os.makedirs(encoder_dir, exist_ok=True)
    # One backup per setting, so a changed config never resumes a stale run.
    run = backup_digest(config, data_id)
    backup_dir = os.path.join(encoder_dir, "backup", run)
    # Adapted again, not read from encoder/: the same digest means the same captions and
    # settings, so a resumed run gets the vocabulary it started with, and encoder/ keeps the
    # saved encoder's own until save_encoder replaces both together.
    tokenizer = adapted_tokenizer(config, dataset)
    auxiliary = uses_auxiliary_attributes(config, dataset)
    train_ids, train_labels = caption_arrays(tokenizer, dataset.splits["train"], auxiliary)
    val_ids, val_labels = caption_arrays(tokenizer, dataset.splits["validation"], auxiliary)
    if len(train_labels) == 0 or len(val_labels) == 0:
        raise ValueError("encoder pre-training needs captions in both the train and validation splits")
    truncated = tokenizer.count_truncated(dataset.captions("train"))
    if truncated:
        print(f"warning: {truncated} training caption(s) longer than max_length={tokenizer.max_length} "
              "were truncated")

    keras.utils.set_random_seed(config.data.seed)
    train_config = config.encoder_train
    encoder = build_encoder(config.encoder, tokenizer.vocabulary_size)
    classifier = compile_classifier(
        make_classifier(config, dataset, encoder, config.encoder.penalty_weight), train_config.learning_rate,
        train_config.weight_decay, cosine_decay_steps(train_config, len(train_labels)))
    # One per run, like the backup: runs with other settings never replace each other's best.
    best = KeepBest(run_file(encoder_dir, "best", f"{run}.weights.h5"), run)
    history_file = run_file(encoder_dir, "history", f"{run}.csv")  # a row per epoch, resumes appending
    callbacks = [
        # Before the backup: an epoch the backup calls done has had its chance to be the best.
        best,
        # Restores epoch, weights and optimizer state after an interruption.
        AtomicBackupAndRestore(backup_dir),
        keras.callbacks.EarlyStopping("val_accuracy", mode="max", patience=train_config.patience),
        # Before the loggers, which then record the rate it sets.
        *learning_rate_schedule(train_config),
        # One log per run: runs with other settings log other columns (a learning rate, say).
        keras.callbacks.TensorBoard(os.path.join(workdir.logs_dir, "encoder", run)),
        keras.callbacks.CSVLogger(history_file, append=True),
        *extra_callbacks,
    ]
    start = time.perf_counter()
    with GracefulTermination():
        history = classifier.fit(
            pipeline.encoder_dataset(train_ids, train_labels, train_config.batch_size, seed=config.data.seed),
            validation_data=pipeline.encoder_dataset(val_ids, val_labels, train_config.batch_size, shuffle=False),
            epochs=train_config.epochs, callbacks=callbacks, verbose=verbose, shuffle=False)
    fit_seconds = time.perf_counter() - start
    # The best epoch of the whole run, resumed or not (a finished run resumed runs no epoch).
    best_epoch = best.restore()
    save_encoder(encoder_dir, encoder, tokenizer, dataset, settings)
    # Training accuracy on at most 20,000 captions: the number, not the cost.
    sample = np.random.default_rng(0).permutation(len(train_labels))[:20000]
    train_metrics = classifier.evaluate(
        pipeline.encoder_dataset(train_ids[sample], train_labels[sample], 1024, shuffle=False),
        verbose=0, return_dict=True)
    val_metrics = classifier.evaluate(
        pipeline.encoder_dataset(val_ids, val_labels, 1024, shuffle=False), verbose=0, return_dict=True)
    result = {
        "encoder": os.path.join(encoder_dir, ENCODER_FILE),
        "history": history_file,
        "kind": config.encoder.kind,
        "epochs_run": len(history.history.get("loss", [])),
        # Over every call of the run: epochs trained, and the one whose weights were kept.
        "epochs_trained": (AtomicBackupAndRestore.read_position(backup_dir) or {}).get("epoch"),
        "best_epoch": None if best_epoch is None else best_epoch + 1,
        # Wall time of the epochs this call ran (training + validation).
        "seconds_per_epoch": fit_seconds / max(1, len(history.history.get("loss", []))),
        "train_accuracy": float(train_metrics["accuracy"]),
        "val_accuracy": float(val_metrics["accuracy"]),
        "val_top5_accuracy": float(val_metrics["top5_accuracy"]),
        "val_penalty": float(val_metrics["penalty"]),
        "truncated_captions": truncated,
        "vocabulary_size": tokenizer.vocabulary_size,
        "max_length": tokenizer.max_length,
    }
    if dataset.splits["test"]:
        test_ids, test_labels = caption_arrays(tokenizer, dataset.splits["test"], auxiliary)
        seen = np.isin(main_labels(test_labels), main_labels(train_labels))
        if seen.any():
            test_metrics = classifier.evaluate(
                pipeline.encoder_dataset(test_ids[seen], test_labels[seen], 1024, shuffle=False),
                verbose=0, return_dict=True)
            result["test_accuracy_seen_classes"] = float(test_metrics["accuracy"])
    if dataset.name == "shapes":
        result.update(colour_swap_accuracy(classifier, tokenizer, dataset.splits["validation"]))
    files.write_json(results_path, result)
    return result


def refuse_to_orphan_the_gan(workdir, config, saved):
    """Raises ValueError when the workdir's GAN may be trained on the encoder a new training would replace."""
    if not os.path.isfile(workdir.latest_generator):
        return
    trained_on = (workdir.read_trained_on() or {}).get("encoder_id")
    if trained_on and saved and saved.get("encoder_id") and trained_on != saved["encoder_id"]:
        return  # that GAN was trained on an earlier encoder: nothing left to orphan
    raise ValueError(
        f"{workdir.gan_dir} holds a GAN trained on the encoder in {workdir.encoder_dir}; training the "
        "encoder again with other settings (or other data, or after an earlier sagan_tf) would leave that "
        "GAN conditioned on sentence vectors that no "
        f"longer exist. Train in a new --workdir (--set data.cache_dir={workdir.data_cache_dir(config)} "
        f"reuses the built data) or delete {workdir.gan_dir} first")


def colour_swap_accuracy(classifier, tokenizer, examples):
    """Shapes only: accuracy on caption pairs that differ only in which colour
    is the object and which the background (same words, other class)."""
    from sagan_tf.data import shapes

    originals, swapped, labels, swapped_labels = shapes.colour_swapped_pairs(examples)
    predict = [np.argmax(classifier.predict(tokenizer.ids(texts), batch_size=1024,
                                            verbose=0), axis=-1) for texts in (originals, swapped)]
    correct = (predict[0] == labels) & (predict[1] == swapped_labels)
    return {"colour_swap_pairs": len(labels),
            "colour_swap_caption_accuracy": float(np.mean(np.concatenate(
                [predict[0] == labels, predict[1] == swapped_labels]))),
            "colour_swap_pair_accuracy": float(correct.mean())}


def save_encoder(encoder_dir, encoder, tokenizer, dataset, settings=None):
    """Saves the encoder (no head) with the vocabulary and the settings (digest) it was trained on.

    Each file is written atomically and encoder.json, which vouches for the
    others, goes first and comes back last: after a kill in between, the
    workdir has no usable encoder rather than a mismatched one.
    """
    record = {
        "vocabulary_fingerprint": tokenizer.fingerprint(), "encoder_id": weights_digest(encoder),
        "settings": settings, "kind": encoder.kind, "output_dim": encoder.output_dim,
        "max_length": tokenizer.max_length, "dataset": dataset.name, "class_names": dataset.class_names}
    with files.replaced_under_record(os.path.join(encoder_dir, METADATA_FILE), record):
        tokenizer.save(encoder_dir)
        files.save_keras_file(encoder, os.path.join(encoder_dir, ENCODER_FILE))
        # Sentence vectors cached from an earlier encoder are stale now.
        for path in glob.glob(os.path.join(encoder_dir, EMBEDDINGS_FILE.format(split="*"))):
            os.remove(path)


def load_frozen_encoder(workdir):
    """Returns (encoder, tokenizer) of a workdir, the encoder frozen for the GAN stage.

    Raises FileNotFoundError when no encoder was trained there and
    VocabularyMismatchError when the vocabulary beside it is not the one it
    was trained on.
    """
    encoder_dir = workdir.encoder_dir
    path = os.path.join(encoder_dir, ENCODER_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no trained text encoder in {workdir.path} (expected {path}); "
            f"run `sagan-tf train-encoder --workdir {workdir.path}` first")
    tokenizer = CaptionTokenizer.load(encoder_dir)
    metadata = read_metadata(workdir)
    if metadata is None:
        raise FileNotFoundError(f"{encoder_dir} has no {METADATA_FILE} beside its encoder; retrain the encoder")
    if metadata["vocabulary_fingerprint"] != tokenizer.fingerprint():
        raise VocabularyMismatchError(
            f"the encoder in {encoder_dir} was trained on another vocabulary than the vocab.txt beside it; "
            "retrain the encoder or restore its vocab.txt/tokenizer.json")
    encoder = files.load_keras_file(path, "text encoder", TextEncoder)
    encoder.trainable = False
    return encoder, tokenizer


def _read_vectors(path):
    with np.load(path) as archive:
        return str(archive["key"]), archive["vectors"]


def attention_over_words(encoder, tokenizer, caption):
    """(tokens, weights [hops, tokens]): each hop's attention over the tokens of `caption`, padding left out."""
    ids = tokenizer.ids([caption])
    _, weights = encoder.encode_with_attention(ids)
    length = int((ids[0] != PAD_ID).sum())
    return tokenizer.tokens_of(ids[0]), np.asarray(weights)[0, :, :length]


def sentence_vectors(encoder, token_ids, batch_size=1024):
    """φ(t) of every row of `token_ids`, in batches (a compiled predict loop)."""
    if len(token_ids) == 0:
        return np.zeros((0, encoder.output_dim), np.float32)
    return encoder.predict(token_ids, batch_size=batch_size, verbose=0)


def cached_sentence_vectors(workdir, encoder, tokenizer, examples, split):
    """φ(t) of every caption of `examples` (in CaptionIndex order), cached in the workdir."""
    path = os.path.join(workdir.encoder_dir, EMBEDDINGS_FILE.format(split=split))
    index = pipeline.CaptionIndex.from_examples(examples)
    key = hashlib.sha1("\n".join([tokenizer.fingerprint()] + index.texts).encode()).hexdigest()
    cached = files.read_cache(path, _read_vectors)
    if cached is not None and cached[0] == key:
        return cached[1]
    ids = tokenizer.ids(index.texts)
    vectors = sentence_vectors(encoder, ids)
    with files.written_atomically(path) as scratch:
        np.savez(scratch, vectors=vectors, key=key)
    return vectors
