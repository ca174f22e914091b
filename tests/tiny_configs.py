"""Tiny overrides shared by the end-to-end tests (seconds on 2 CPU cores)."""

TINY_DATA = ["data.num_images=240", "data.captions_per_image=3", "data.image_size=16", "data.augment=false"]
TINY_ENCODER = ["encoder.embedding_dim=16", "encoder.lstm_units=16", "encoder.hops=4",
                "encoder.attention_units=16", "encoder.hidden_units=32", "encoder.output_dim=16",
                "encoder_train.epochs=2", "encoder_train.batch_size=32"]
TINY_GAN = ["gan.noise_dim=8", "gan.ngf=8", "gan.ndf=8", "gan.condition_units=8",
            "train.epochs=2", "train.batch_size=16", "train.steps_per_epoch=3"]


def overrides(*groups):
    return [arg for group in groups for item in group for arg in ("--set", item)]
