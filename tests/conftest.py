import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def tiny_shapes():
    """A small shapes data set, built once per test session."""
    from sagan_tf.data import shapes
    return shapes.generate(num_images=300, captions_per_image=3, image_size=32, seed=3, workers=1)
