"""Caption → image with a trained workdir: the frozen encoder, its tokenizer
and a generator checkpoint. Used by `generate`, `evaluate` and `export`."""

import os

import keras
import numpy as np

from sagan_tf import files
from sagan_tf.models.generator import Generator
from sagan_tf.models.gan import sample_noise
from sagan_tf.training import encoder_training, gan_training


class TextToImage:
    def __init__(self, encoder, tokenizer, generator, noise="normal"):
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.generator = generator
        self.noise_kind = noise
        self.noise_dim = int(generator.inputs[0].shape[-1])

    @classmethod
    def from_workdir(cls, workdir, config, checkpoint=None):
        encoder, tokenizer = encoder_training.load_frozen_encoder(workdir)
        path = checkpoint or workdir.latest_generator
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"no generator checkpoint at {path}; train one with "
                f"`sagan-tf train-gan --workdir {workdir.path}` or name one with --checkpoint")
        gan_training.check_trained_with(workdir, config, path)
        generator = files.load_keras_file(path, "generator", Generator)
        if int(generator.inputs[1].shape[-1]) != encoder.output_dim:
            raise ValueError(f"the generator in {path} takes {generator.inputs[1].shape[-1]}-d sentence vectors "
                             f"but the workdir's encoder makes {encoder.output_dim}-d ones")
        return cls(encoder, tokenizer, generator, config.gan.noise)

    def token_ids(self, captions):
        return self.tokenizer.ids(list(captions))

    def embed(self, captions):
        if not captions:
            raise ValueError("no captions given")
        return encoder_training.sentence_vectors(self.encoder, self.token_ids(captions))

    def noise(self, count, seed):
        return np.asarray(sample_noise(count, self.noise_dim, self.noise_kind, seed))

    def text_to_image(self, token_ids, noise):
        """Images in [-1, 1] from token ids and noise, as tensors: the graph the exports serve."""
        noise = keras.ops.convert_to_tensor(noise, "float32")  # Keras refuses a NumPy-and-tensor input list
        return self.generator([noise, self.encoder(token_ids, training=False)], training=False)

    def images(self, vectors, noise):
        return np.asarray(self.generator([np.asarray(noise, np.float32), np.asarray(vectors, np.float32)],
                                         training=False))

    def generate(self, captions, samples_per_caption=8, seed=0):
        """[captions, samples, H, W, 3] in [-1, 1]; each column shares its noise."""
        vectors = self.embed(captions)
        noise = np.tile(self.noise(samples_per_caption, seed), (len(captions), 1))
        images = self.images(np.repeat(vectors, samples_per_caption, axis=0), noise)
        return images.reshape(len(captions), samples_per_caption, *images.shape[1:])

    def interpolate(self, caption_a, caption_b, steps=8, samples=4, seed=0):
        """[samples, steps, H, W, 3]: a walk from caption a's vector to caption b's."""
        start, end = self.embed([caption_a, caption_b])
        weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        walk = (1 - weights) * start + weights * end
        noise = np.repeat(self.noise(samples, seed), steps, axis=0)
        images = self.images(np.tile(walk, (samples, 1)), noise)
        return images.reshape(samples, steps, *images.shape[1:])
