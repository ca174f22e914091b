"""GAN-CLS training with `model.fit` under a tf.distribute strategy.

Reads the frozen encoder's cached sentence vectors, so the LSTM does not run
in the training step. Writes to `<workdir>/gan/`: checkpoints of G and D,
per-worker backups for exact resume, sample grids and TensorBoard logs.
"""

import dataclasses
import os

import keras
import numpy as np

from sagan_tf import digests, files
from sagan_tf.data import pipeline, prepare
from sagan_tf.models.discriminator import Discriminator
from sagan_tf.models.gan import TextToImageGAN
from sagan_tf.models.generator import Generator
from sagan_tf.training import callbacks as gan_callbacks
from sagan_tf.training import distribution, encoder_training, precision


def run_digest(config, encoder_id, data_id, policy):
    """Names a GAN run's backup: the data (settings and examples), networks, optimisation and the encoder.

    How long to train and how often to back up are left out, so more epochs
    continue the backed-up run; anything else starts its own. The precision
    is the dtype policy `train.precision` resolved to: `auto` picks by
    hardware, and a float16 run's optimizer (loss scaling) does not restore
    into a bfloat16 or float32 one.
    """
    train = dataclasses.replace(config.train, precision=policy)
    return digests.config_digest(
        config.data, config.gan, train, encoder_id, data_id,
        ignore=("epochs", "backup_every_steps", "jit_compile"))


def check_trained_with(workdir, config, checkpoint):
    """Raises ValueError when the generator `checkpoint` was trained on another text encoder than the
    workdir's, or with other noise than `config.gan.noise`.

    A run records both in gan/trained_on.json, beside gan/checkpoints/;
    a generator copied away from that record cannot be checked.
    """
    gan_dir = os.path.dirname(os.path.dirname(os.path.realpath(checkpoint)))
    record = os.path.join(gan_dir, os.path.basename(workdir.trained_on_path))
    if not os.path.isfile(record):
        return
    recorded = files.read_json(record, "record of the GAN run", required=("run", "encoder_id"))
    noise = recorded.get("noise", config.gan.noise)  # absent from records written before it was kept
    if noise != config.gan.noise:
        raise ValueError(f"the generator {checkpoint} was trained on gan.noise={noise}; "
                         f"gan.noise={config.gan.noise} would feed it noise it never saw ({record})")
    trained_on = recorded["encoder_id"]
    current = (encoder_training.read_metadata(workdir) or {}).get("encoder_id")
    if not (trained_on and current and trained_on != current):
        return
    if gan_dir == os.path.realpath(workdir.gan_dir):
        raise ValueError(
            f"the generator in {workdir.checkpoints_dir} was trained on another text encoder than the one in "
            f"{workdir.encoder_dir} (retrained since); train the GAN again "
            f"(`sagan-tf train-gan --workdir {workdir.path}`)")
    raise ValueError(
        f"the generator {checkpoint} was trained on another text encoder than the one in {workdir.encoder_dir} "
        f"({record} says so); use it with the workdir it was trained in")


def resume_from(backup_dir):
    """The backup a worker resumes from: the chief's where it can see it, else its own.

    Workers train in lockstep, so the chief's backup holds every worker's
    weights; when a worker is lost mid-run the survivors' own backups may
    be some steps apart, and workers resuming from different steps would
    not meet in their collective ops. Only the first fit() of a run reads
    it: later ones find each worker's own backup of the same epoch end.
    """
    chief = os.path.join(os.path.dirname(backup_dir), "worker_0")
    has_backup = os.path.isfile(os.path.join(chief, gan_callbacks.ExactBackupAndRestore.WEIGHTS_FILE))
    return chief if has_backup else backup_dir


def claim_checkpoints(workdir, run, encoder_id, noise):
    """Records that `run` writes gan/checkpoints/, refusing to replace another run's generator.

    Raises ValueError when the run, new or resumed from its backup, would
    overwrite the generator of a run under other settings (or on another encoder).
    Returns the run the record named before (None when there was none).
    """
    previous_run = (workdir.read_trained_on() or {}).get("run")
    if os.path.isfile(workdir.latest_generator) and previous_run != run:
        raise ValueError(
            f"{workdir.gan_dir} holds a generator from another run (other data, gan or train settings, "
            "another text encoder, or an earlier sagan_tf); this run would overwrite it. Train in a new "
            f"--workdir, or delete {workdir.gan_dir} first (a change of train.epochs alone continues a run)")
    if distribution.worker_index() == 0:
        files.write_json(workdir.trained_on_path, {"run": run, "encoder_id": encoder_id, "noise": noise})
    return previous_run


def build_gan(config, condition_dim, strategy, num_classes=0):
    """The configured G, D and GAN, with both optimizers built in the strategy scope.

    `num_classes` sizes D's class head, used when gan.class_loss_weight > 0.
    The initial weights come from `train.seed`.
    """
    class_head = num_classes if config.gan.class_loss_weight else 0
    keras.utils.set_random_seed(config.train.seed)
    with strategy.scope():
        generator = Generator(noise_dim=config.gan.noise_dim, condition_dim=condition_dim,
                              image_size=config.data.image_size, ngf=config.gan.ngf)
        discriminator = Discriminator(image_size=config.data.image_size, ndf=config.gan.ndf,
                                      condition_dim=condition_dim, condition_units=config.gan.condition_units,
                                      num_classes=class_head)
        gan = TextToImageGAN(generator, discriminator, noise_dim=config.gan.noise_dim, noise=config.gan.noise,
                             gan_int=config.gan.gan_int, int_beta=config.gan.int_beta, seed=config.train.seed,
                             class_loss_weight=config.gan.class_loss_weight,
                             reuse_fakes=config.gan.reuse_fakes)
        gan.compile(
            d_optimizer=keras.optimizers.Adam(config.train.learning_rate, beta_1=config.train.beta_1),
            g_optimizer=keras.optimizers.Adam(config.train.learning_rate, beta_1=config.train.beta_1),
            jit_compile=config.train.jit_compile)
    return gan


def sample_captions(dataset, count=8):
    """Fixed test captions for the sample grids: one per image, spread over classes."""
    examples = dataset.splits["test"] or dataset.splits["validation"] or dataset.splits["train"]
    by_label = {}
    for example in examples:
        by_label.setdefault(example.label, example)
    chosen = list(by_label.values())[:count]
    return [e.captions[0] for e in chosen]


def class_count(config, dataset):
    """Classes for D's class head; checks that every training image has one when it is on."""
    if not config.gan.class_loss_weight:
        return 0
    if dataset.num_classes < 2 or any(e.label < 0 for e in dataset.splits["train"]):
        raise ValueError(
            f"gan.class_loss_weight > 0 needs a class for every training image, and the {dataset.name} "
            "data set has none (or too few); set gan.class_loss_weight=0")
    return dataset.num_classes


def split_inputs(workdir, config, dataset, encoder, tokenizer, split):
    """(images, CaptionIndex, sentence vectors) of a split, aligned."""
    size = prepare.load_size(config.data.image_size, config.data.augment)
    images, examples = prepare.split_images(dataset, split, size, workdir.data_cache_dir(config))
    vectors = encoder_training.cached_sentence_vectors(workdir, encoder, tokenizer, examples, split)
    return images, pipeline.CaptionIndex.from_examples(examples), vectors


def train_gan(workdir, config, dataset, verbose=1, extra_callbacks=()):
    """Trains the configured GAN on `dataset`; returns a dict of results."""
    # First: MultiWorkerMirroredStrategy sets up collective ops, which must
    # happen before anything starts TensorFlow's runtime.
    strategy = distribution.strategy_from_environment()
    policy = precision.resolve(config.train.precision)
    with precision.policy_scope(policy):
        return _train(workdir, config, dataset, verbose, extra_callbacks, policy, strategy)


def _train(workdir, config, dataset, verbose, extra_callbacks, policy, strategy):
    encoder, tokenizer = encoder_training.load_frozen_encoder(workdir)
    batch = config.train.batch_size
    images, index, vectors = split_inputs(workdir, config, dataset, encoder, tokenizer, "train")
    if len(images) < batch:
        raise ValueError(f"the train split has {len(images)} images, fewer than train.batch_size={batch}")

    def fit_input(images, index, vectors, steps_drawn=0, **options):
        return distribution.host_fed_dataset(
            strategy, lambda batch_size, *shard: pipeline.gan_dataset(
                images, index, {"embedding": vectors}, batch_size, image_size=config.data.image_size,
                shard=shard, start=steps_drawn * batch_size, **options),
            batch)

    steps = config.train.steps_per_epoch or len(images) // batch
    validation = {}
    if dataset.splits["validation"]:
        val_images, val_index, val_vectors = split_inputs(workdir, config, dataset, encoder, tokenizer, "validation")
        if len(val_images) >= batch and len(np.unique(val_index.groups)) > 1:
            validation = dict(
                validation_data=fit_input(val_images, val_index, val_vectors, seed=1, shuffle=False),
                validation_steps=min(10, len(val_images) // batch))

    encoder_id = (encoder_training.read_metadata(workdir) or {}).get("encoder_id")
    run = run_digest(config, encoder_id, digests.dataset_digest(dataset), policy)
    backup_dir = os.path.join(workdir.gan_dir, "backup", run, f"worker_{distribution.worker_index()}")
    chief = distribution.worker_index() == 0
    restore_dir = resume_from(backup_dir)
    epoch, steps_done = gan_callbacks.ExactBackupAndRestore.resume_point(restore_dir)
    unfinished_epoch = 0 < steps_done < steps and epoch < config.train.epochs

    def train_input(steps_drawn):
        return fit_input(images, index, vectors, steps_drawn=steps_drawn, seed=config.train.seed,
                         augment=config.data.augment, repeat=True)

    # Each fit() reads a new iterator, which starts where the run's data stream
    # stands. Built before build_gan seeds TensorFlow, whose global seed tf.data
    # mixes into the shuffle's: every fit() of a run, resumed or not, reads one order.
    train_data = train_input(epoch * steps + steps_done)
    rest_of_run_data = train_input((epoch + 1) * steps) if unfinished_epoch else train_data

    gan = build_gan(config, encoder.output_dim, strategy, class_count(config, dataset))
    captions = sample_captions(dataset)
    sample_vectors = encoder_training.sentence_vectors(encoder, tokenizer.ids(captions))
    run_recorded = claim_checkpoints(workdir, run, encoder_id, config.gan.noise) == run
    side_effects = []
    if chief:
        side_effects += [
            gan_callbacks.SampleGrid(captions, sample_vectors, os.path.join(workdir.samples_dir, "train"),
                                     seed=config.train.seed, log_dir=os.path.join(workdir.logs_dir, "gan")),
            gan_callbacks.GANCheckpoint(workdir.checkpoints_dir,
                                        every=max(1, config.train.epochs // 10)),
            keras.callbacks.CSVLogger(os.path.join(workdir.gan_dir, "history.csv"), append=True),
        ]
    side_effects += list(extra_callbacks)
    fit_ends, validation_starts = [], []

    def fit(train_data, initial_epoch, epochs, steps_per_epoch, steps_done_offset=0, restore_dir=None):
        backup = gan_callbacks.ExactBackupAndRestore(backup_dir, save_freq=config.train.backup_every_steps,
                                                     steps_done_offset=steps_done_offset, restore_dir=restore_dir)
        clock = gan_callbacks.IteratorReleaseClock()
        history = gan.fit(train_data, initial_epoch=initial_epoch, epochs=epochs, steps_per_epoch=steps_per_epoch,
                          callbacks=[gan_callbacks.StopOnNaN(), *side_effects, backup, clock],
                          verbose=verbose, shuffle=False, **validation)
        if clock.last_epoch_ended is not None:
            fit_ends.append(clock.seconds_since_last_epoch())
        validation_starts.extend(clock.validation_starts)
        return history

    results_path = os.path.join(workdir.gan_dir, "results.json")
    if run_recorded and os.path.isfile(results_path):
        recorded = files.read_json(results_path, "GAN results file", required=("epochs",))
        backed_up = (epoch, steps_done) != (0, 0)
        if epoch >= config.train.epochs or (not backed_up and recorded["epochs"] >= config.train.epochs):
            print(f"the GAN in {workdir.gan_dir} has trained its {recorded['epochs']} epochs already; "
                  "raise train.epochs to train on"
                  + (f" (a run towards more epochs stopped in epoch {epoch + 1})" if steps_done else ""))
            return recorded
        if not backed_up:
            raise ValueError(
                f"the GAN in {workdir.gan_dir} finished {recorded['epochs']} epochs, but its backup is gone "
                f"({os.path.dirname(backup_dir)}), and with it the optimizer state: it cannot train on to "
                f"train.epochs={config.train.epochs}. Train in a new --workdir")
    history = {}
    with gan_callbacks.GracefulTermination():
        if unfinished_epoch:
            # Finish the interrupted epoch with just the steps it still owes.
            history = fit(train_data, epoch, epoch + 1, steps - steps_done, steps_done_offset=steps_done,
                          restore_dir=restore_dir).history
            restore_dir = None  # every worker has just backed up that epoch's end in its own folder
            epoch += 1
        history = fit(rest_of_run_data, epoch, config.train.epochs, steps, restore_dir=restore_dir).history or history
    result = {
        "epochs": config.train.epochs,
        "steps_per_epoch": steps,
        "optimizer_steps": int(gan.d_optimizer.iterations.numpy()),
        "final": {k: float(np.mean(v[-1])) for k, v in history.items()},
        "checkpoint": workdir.latest_generator,
        "samples": workdir.samples_dir,
        "precision": policy,
        "precision_requested": config.train.precision,
        "replicas": strategy.num_replicas_in_sync,
        # Where fit() releases its iterators (README, "fit() returning late"): from the last
        # epoch's end to fit()'s return, per fit() call, and before the validation passes.
        "fit_end_seconds": [round(t, 3) for t in fit_ends],
        "validation_start_seconds": {"passes": len(validation_starts),
                                     "max": round(max(validation_starts, default=0.0), 3),
                                     "total": round(sum(validation_starts), 3)},
    }
    if chief:
        files.write_json(results_path, result)
    return result
