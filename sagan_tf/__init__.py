"""sagan_tf: text-to-image synthesis with a self-attentive text encoder and a conditional GAN."""

__version__ = "0.1.0"
