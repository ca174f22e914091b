"""Text-conditional GAN with matching-aware (GAN-CLS) training, optionally GAN-INT (SPEC §4)."""

import keras
import tensorflow as tf
from keras import ops

from sagan_tf.models import gan_losses
from sagan_tf.training import distribution

NOISE_KINDS = ("normal", "uniform")
BATCH_KEYS = ("image", "embedding", "wrong_embedding")
# Also needed when the auxiliary class loss is on: the matching caption's class.
LABEL_KEY = "label"


def check_noise_kind(noise):
    if noise not in NOISE_KINDS:
        raise ValueError(f"noise must be one of {NOISE_KINDS}, got {noise!r}.")


def sample_noise(batch_size, noise_dim, noise="normal", seed=0):
    """z of shape [batch_size, noise_dim]; the same seed always gives the same noise.

    Args:
        batch_size: int or scalar tensor.
        noise_dim: length of each noise vector.
        noise: "normal" for N(0, 1) or "uniform" for U(-1, 1).
        seed: int or scalar int tensor, or a shape-[2] stateless seed.
    """
    check_noise_kind(noise)
    seed = ops.cast(seed, "int64")
    if len(seed.shape) == 0:
        seed = ops.stack([seed, ops.zeros_like(seed)])
    shape = ops.stack([ops.cast(batch_size, "int32"), noise_dim])
    if noise == "uniform":
        return tf.random.stateless_uniform(shape, seed, minval=-1.0, maxval=1.0)
    return tf.random.stateless_normal(shape, seed)


def with_loss_scaling(optimizer, network):
    """Wraps `optimizer` in a LossScaleOptimizer when `network` computes in float16."""
    needs_scaling = network.dtype_policy.name == "mixed_float16"
    if needs_scaling and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def check_compatible(generator, discriminator, noise_dim):
    """Checks that the two networks fit together; returns the noise length."""
    if not (generator.built and discriminator.built):
        raise ValueError(
            "TextToImageGAN needs built generator and discriminator models "
            "(create them functionally, or call them once on a batch)."
        )
    if not all(hasattr(discriminator, part) for part in ("image_tower", "pair_head")):
        raise ValueError(
            "TextToImageGAN needs a discriminator with an `image_tower` and a `pair_head` "
            f"(sagan_tf.models.discriminator.Discriminator), got {type(discriminator).__name__}."
        )
    if not (getattr(generator, "inputs", None) and getattr(discriminator, "inputs", None)):
        if noise_dim is None:
            raise ValueError("noise_dim is required when the generator has no symbolic inputs.")
        return noise_dim
    generator_noise, generator_condition = (tensor.shape[-1] for tensor in generator.inputs)
    image_shape = tuple(discriminator.inputs[0].shape[1:])
    discriminator_condition = discriminator.inputs[1].shape[-1]
    if noise_dim not in (None, generator_noise):
        raise ValueError(
            f"noise_dim={noise_dim} does not match the generator's noise input "
            f"of length {generator_noise}."
        )
    if generator_condition != discriminator_condition:
        raise ValueError(
            f"The generator takes sentence vectors of length {generator_condition}, "
            f"the discriminator of length {discriminator_condition}."
        )
    if tuple(generator.outputs[0].shape[1:]) != image_shape:
        raise ValueError(
            f"The generator makes images of shape {tuple(generator.outputs[0].shape[1:])}, "
            f"the discriminator judges images of shape {image_shape}."
        )
    return generator_noise


@keras.saving.register_keras_serializable(package="sagan_tf")
class TextToImageGAN(distribution.MultiWorkerFit, keras.Model):
    """Trains a conditional generator against a matching-aware discriminator.

    Each `train_step` takes a dict batch `{"image", "embedding",
    "wrong_embedding"}` (images in [-1, 1], phi of the matching caption, phi
    of a mismatched caption) and makes one discriminator update on
    (real, matching), (real, mismatched) and (fake, matching) pairs, then one
    non-saturating generator update. With `gan_int` the generator also has
    to fool the discriminator on interpolated captions
    `int_beta * h + (1 - int_beta) * roll(h, 1)`.

    Logs: d_loss, g_loss, and d_real, d_wrong, d_fake, the mean probability
    the discriminator gives to each kind of pair.

    With `class_loss_weight > 0` (TAC-GAN, Dash et al. 2017; not in the
    SPEC) the discriminator must have a class head (`num_classes > 0`) and
    batches a "label" (the matching caption's class): D also learns to name
    the class of real images and G to draw images D names as the caption's
    class, each term weighted by `class_loss_weight`. The logs then add
    real_class_accuracy and fake_class_accuracy.

    Args:
        generator: built model, `[z, phi] -> images`.
        discriminator: a built `Discriminator`, `[images, phi] -> logits
            [batch, 1]` (or `[logits, class_logits]` with a class head); the
            step calls its `image_tower` and `pair_head` separately.
        noise_dim: length of z; `None` reads it from the generator's first input.
        noise: "normal" for z ~ N(0, 1) or "uniform" for z ~ U(-1, 1).
        gan_int: add the GAN-INT generator term.
        int_beta: interpolation weight of the matching caption in GAN-INT.
        seed: seed of the training noise stream (`None`: random).
        class_loss_weight: weight of the auxiliary class loss; 0 is GAN-CLS.
        reuse_fakes: the generator update back-propagates through the images
            the discriminator update judged (as PyTorch's DCGAN example does)
            instead of drawing fresh noise: one generator pass a step less.
    """

    def __init__(
        self,
        generator,
        discriminator,
        noise_dim=None,
        noise="normal",
        gan_int=False,
        int_beta=0.5,
        seed=None,
        class_loss_weight=0.0,
        reuse_fakes=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        noise_dim = check_compatible(generator, discriminator, noise_dim)
        check_noise_kind(noise)
        if not 0.0 <= int_beta <= 1.0:
            raise ValueError(f"int_beta must be in [0, 1], got {int_beta}.")
        if class_loss_weight < 0:
            raise ValueError(f"class_loss_weight must be >= 0, got {class_loss_weight}.")
        if class_loss_weight and not getattr(discriminator, "num_classes", 0):
            raise ValueError(
                "class_loss_weight > 0 needs a discriminator with a class head (num_classes > 0)."
            )
        self.generator = generator
        self.discriminator = discriminator
        self.noise_dim = noise_dim
        self.noise = noise
        self.gan_int = gan_int
        self.int_beta = int_beta
        self.seed = seed
        self.class_loss_weight = class_loss_weight
        self.reuse_fakes = reuse_fakes
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_wrong_tracker = keras.metrics.Mean(name="d_wrong")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self.class_trackers = []
        if class_loss_weight:
            self.class_trackers = [keras.metrics.Mean(name="real_class_accuracy"),
                                   keras.metrics.Mean(name="fake_class_accuracy")]
        # The sub-models hold every weight and are already built.
        self.built = True

    @property
    def metrics(self):
        # Listed here so fit() resets them at each epoch start.
        return [
            self.d_loss_tracker,
            self.g_loss_tracker,
            self.d_real_tracker,
            self.d_wrong_tracker,
            self.d_fake_tracker,
            *self.class_trackers,
        ]

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        """Sets one optimizer per network; `kwargs` go to `keras.Model.compile`.

        The optimizer of a network with a "mixed_float16" policy is wrapped in
        a `LossScaleOptimizer`. The optimizers are built here, in the model's
        strategy scope, so checkpoints and `BackupAndRestore` find their
        state before the first step.
        """
        super().compile(optimizer=None, **kwargs)
        self.d_optimizer = with_loss_scaling(keras.optimizers.get(d_optimizer), self.discriminator)
        self.g_optimizer = with_loss_scaling(keras.optimizers.get(g_optimizer), self.generator)
        with self.distribute_strategy.scope():
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.g_optimizer.build(self.generator.trainable_variables)

    # Saved with the weights (a backup, `save_weights`): without it a resumed
    # run would draw the noise of the run's first steps again.
    NOISE_STATE_KEY = "noise_seed_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self.NOISE_STATE_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        names = list(store.keys())
        if self.NOISE_STATE_KEY in names:  # absent from files saved before it was kept
            self.seed_generator.state.assign(store[self.NOISE_STATE_KEY])
        super().load_own_variables({name: store[name] for name in names if name != self.NOISE_STATE_KEY})

    def call(self, inputs, training=False):
        """`[noise, embeddings] -> images`, the generator alone."""
        return self.generator(inputs, training=training)

    def sample_noise(self, batch_size, seed=None):
        """Noise for `batch_size` images; see the module-level `sample_noise`.

        `seed=None` draws from the model's noise stream (seeded by the
        constructor's `seed`); any other seed always gives the same noise.
        """
        if seed is None:
            seed = self.seed_generator.next()
        return sample_noise(batch_size, self.noise_dim, self.noise, seed)

    def generate(self, embeddings, noise=None, seed=None):
        """Images in [-1, 1] for sentence vectors `embeddings` ([batch, condition_dim])."""
        embeddings = ops.convert_to_tensor(embeddings, "float32")
        if noise is None:
            noise = self.sample_noise(ops.shape(embeddings)[0], seed=seed)
        return self.generator([ops.convert_to_tensor(noise, "float32"), embeddings], training=False)

    def _replica_noise(self, batch_size):
        # One stream per replica: identical noise on every replica would shrink
        # the variety of the global batch.
        replica_id = tf.distribute.get_replica_context().replica_id_in_sync_group
        seed = tf.random.experimental.stateless_fold_in(self.seed_generator.next(), replica_id)
        return self.sample_noise(batch_size, seed=seed)

    def _unpack(self, data):
        """(images, matching, mismatched, labels or None) from a batch dict."""
        keys = BATCH_KEYS + ((LABEL_KEY,) if self.class_loss_weight else ())
        missing = [key for key in keys if not isinstance(data, dict) or key not in data]
        if missing:
            raise ValueError(
                f"TextToImageGAN batches must be dicts with keys {keys}; missing {missing}."
            )
        labels = data[LABEL_KEY] if self.class_loss_weight else None
        return (*(ops.cast(data[key], "float32") for key in BATCH_KEYS), labels)

    def _judge(self, images, embeddings, training):
        """(real/fake logits, class logits or None) of the discriminator."""
        features = self.discriminator.image_tower(images, training=training)
        return self._judge_features(features, embeddings, training)

    def _judge_features(self, features, embeddings, training):
        outputs = self.discriminator.pair_head([features, embeddings], training=training)
        if isinstance(outputs, (list, tuple)):
            return tuple(outputs)
        return outputs, None

    def _discriminate(self, images, matching, mismatched, fakes, labels, training):
        """(logits of the three kinds of pair, per-example D loss, class logits of the real images)."""
        # Both real pairs hold the same images: one pass through the image layers
        # (identical batch statistics, so the loss is unchanged; ~1/6 less work a step).
        real_features = self.discriminator.image_tower(images, training=training)
        real_logits, real_classes = self._judge_features(real_features, matching, training)
        wrong_logits, _ = self._judge_features(real_features, mismatched, training)
        fake_logits, _ = self._judge(fakes, matching, training)
        logits = (real_logits, wrong_logits, fake_logits)
        d_loss = gan_losses.discriminator_loss(*logits)
        if self.class_loss_weight:
            # Real images only: naming the class of fakes would teach D nothing about the data.
            d_loss += self.class_loss_weight * gan_losses.class_loss(real_classes, labels)
        return logits, d_loss, real_classes

    def _generator_loss(self, noise, matching, labels, training, fakes=None):
        """(per-example G loss, class logits D gives the fakes or None).

        `fakes` are G's images for `noise` when the caller already has them.
        """
        if fakes is None:
            fakes = self.generator([noise, matching], training=training)
        fake_logits, fake_classes = self._judge(fakes, matching, training)
        per_example = gan_losses.generator_loss(fake_logits)
        if self.class_loss_weight:
            per_example += self.class_loss_weight * gan_losses.class_loss(fake_classes, labels)
        if self.gan_int:
            # Captions between two neighbours of the batch: no matching image
            # exists (nor a class), so the discriminator can only judge realism and fit.
            mixed = self.int_beta * matching + (1.0 - self.int_beta) * ops.roll(matching, 1, axis=0)
            mixed_fakes = self.generator([noise, mixed], training=training)
            per_example += gan_losses.generator_loss(self._judge(mixed_fakes, mixed, training)[0])
        return per_example, fake_classes

    def _objective(self, optimizer, per_example_loss):
        # Global-batch mean (see gan_losses.global_batch_mean), loss-scaled
        # when the optimizer is a LossScaleOptimizer.
        return optimizer.scale_loss(gan_losses.global_batch_mean(per_example_loss))

    def _apply(self, optimizer, tape, objective, variables):
        optimizer.apply_gradients(zip(tape.gradient(objective, variables), variables))

    def train_step(self, data):
        images, matching, mismatched, labels = self._unpack(data)
        batch_size = ops.shape(images)[0]

        noise = self._replica_noise(batch_size)
        with tf.GradientTape() as g_tape:
            fakes = self.generator([noise, matching], training=True)
            with g_tape.stop_recording(), tf.GradientTape() as d_tape:
                logits, d_loss, real_classes = self._discriminate(
                    images, matching, mismatched, fakes, labels, training=True)
                objective = self._objective(self.d_optimizer, d_loss)
            self._apply(self.d_optimizer, d_tape, objective, self.discriminator.trainable_variables)

            if not self.reuse_fakes:
                noise, fakes = self._replica_noise(batch_size), None
            # The updated D judges the fakes (as in Reed et al.'s alternating steps).
            g_loss, fake_classes = self._generator_loss(noise, matching, labels, True, fakes)
            objective = self._objective(self.g_optimizer, g_loss)
        self._apply(self.g_optimizer, g_tape, objective, self.generator.trainable_variables)

        return self._track(d_loss, g_loss, logits, labels, (real_classes, fake_classes))

    def test_step(self, data):
        images, matching, mismatched, labels = self._unpack(data)
        noise = self._replica_noise(ops.shape(images)[0])
        fakes = self.generator([noise, matching], training=False)
        logits, d_loss, real_classes = self._discriminate(
            images, matching, mismatched, fakes, labels, training=False)
        g_loss, fake_classes = self._generator_loss(noise, matching, labels, training=False)
        return self._track(d_loss, g_loss, logits, labels, (real_classes, fake_classes))

    def _track(self, d_loss, g_loss, logits, labels, class_logits):
        real_logits, wrong_logits, fake_logits = logits
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(ops.sigmoid(real_logits))
        self.d_wrong_tracker.update_state(ops.sigmoid(wrong_logits))
        self.d_fake_tracker.update_state(ops.sigmoid(fake_logits))
        for tracker, logits_of_kind in zip(self.class_trackers, class_logits):
            named = ops.argmax(logits_of_kind, axis=-1)
            tracker.update_state(ops.cast(ops.equal(named, ops.cast(labels, named.dtype)), "float32"))
        return distribution.reducible_logs({m.name: m.result() for m in self.metrics})

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "noise_dim": self.noise_dim,
                "noise": self.noise,
                "gan_int": self.gan_int,
                "int_beta": self.int_beta,
                "seed": self.seed,
                "class_loss_weight": self.class_loss_weight,
                "reuse_fakes": self.reuse_fakes,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return {
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
        }

    def compile_from_config(self, config):
        self.compile(
            d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
            g_optimizer=keras.saving.deserialize_keras_object(config["g_optimizer"]),
        )
