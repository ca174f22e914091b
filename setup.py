import pathlib

from setuptools import find_packages, setup

here = pathlib.Path(__file__).parent
requirements = [
    line.strip()
    for line in (here / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="sagan_tf",
    version="0.1.0",
    description="Text-to-image synthesis: BiLSTM structured self-attention encoder + conditional GAN (Keras 3 / TF 2)",
    long_description=(here / "README.md").read_text() if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["sagan_tf", "sagan_tf.*"]),
    install_requires=requirements,
    entry_points={"console_scripts": ["sagan-tf=sagan_tf.cli:main"]},
)
