"""The evaluation protocol: IS, FID and KID of generated images, and text–image alignment.

`eval.num_images` images are generated for test-split captions in batches;
of each batch only the feature network's outputs are kept (score logits,
features, the domain classifier's readings), never the images, so 30,000
images fit in memory. The real test images pass through the same networks:
their features are the FID/KID reference, and the classifier's readings of
those it was never fitted on are the alignment ceiling. Every number names
the network that produced it.
"""

import dataclasses
import functools
import importlib.metadata
import os
import time

import keras
import numpy as np
import tensorflow as tf

import sagan_tf
from sagan_tf import pixels
from sagan_tf.data import prepare, registry
from sagan_tf.digests import weights_digest
from sagan_tf.evaluation import alignment, domain_classifier, metrics
from sagan_tf.training import encoder_training

IS_SPLITS = 10
KID_BLOCK_SIZE = 1024
NUM_SAMPLES = 16


def evaluation_captions(dataset, num_images, seed):
    """The `num_images` test captions to draw, as (texts, [(example, caption number)]).

    A seeded shuffle of every test caption (taken by image name, so the
    draw does not depend on how the data set lists them), cycled
    (reshuffled each pass) when more images than captions are asked for.
    """
    examples = sorted(dataset.splits["test"], key=lambda example: example.name)
    owners = [(example, k) for example in examples for k in range(len(example.captions))]
    if not owners:
        raise ValueError(f"the test split of {dataset.name} has no captions to evaluate on")
    rng = np.random.default_rng(seed)
    passes = -(-num_images // len(owners))
    order = np.concatenate([rng.permutation(len(owners)) for _ in range(passes)])[:num_images]
    chosen = [owners[i] for i in order]
    return [example.captions[k] for example, k in chosen], chosen


@dataclasses.dataclass
class Judges:
    """The feature network behind IS/FID/KID and the domain classifier behind alignment.

    `feature_network` is "domain" (the classifier plays both roles) or
    "inception_v3"; `classifier` is None when the workdir has none, and
    alignment is then left out.
    """

    feature_network: str
    classifier: object = None
    classifier_path: str = None
    inception: object = None
    inception_weights: str = None

    def __call__(self, images):
        """(score logits, features, {head: logits} or None) of a batch, as NumPy."""
        images = tf.convert_to_tensor(images, tf.float32)
        head_logits = None
        if self.classifier is not None:
            head_logits, domain_features = self.classifier.outputs(images, training=False)
        if self.inception is not None:
            score_logits, features = self.inception(images, training=False)
        else:
            score_logits, features = self.classifier.score_logits(head_logits), domain_features
        if head_logits is not None:
            head_logits = {name: np.asarray(v) for name, v in head_logits.items()}
        return np.asarray(score_logits, np.float32), np.asarray(features, np.float32), head_logits

    @functools.cached_property
    def classifier_id(self):
        """The classifier's weights digest (as classifier.json records it), or None."""
        return None if self.classifier is None else weights_digest(self.classifier)

    def check_reads(self, dataset):
        """Raises ValueError when the classifier was trained on another data set's labels."""
        if self.classifier is not None and self.classifier.heads != domain_classifier.heads_for(dataset)[0]:
            raise ValueError(f"the domain classifier {self.classifier_path} reads other labels than the "
                             f"{dataset.name} data set has (heads {sorted(self.classifier.heads)}); "
                             "judge with a classifier trained on this data set")

    def describe(self):
        """Which network made the IS logits and the FID/KID features, for the report."""
        if self.feature_network == "domain":
            classifier = self.classifier
            score = " x ".join(f"p({name})" for name in classifier.score_heads)
            classes = np.prod([len(classifier.heads[name]) for name in classifier.score_heads])
            return {
                "name": "domain",
                "source": self.classifier_path,
                "id": self.classifier_id,
                "score_logits": f"log {score} over {classes} classes",
                "features": f"penultimate layer ({classifier.feature_dim}-d)",
            }
        return {
            "name": "inception_v3",
            "source": os.path.abspath(self.inception_weights),
            "id": weights_digest(self.inception),
            "score_logits": f"pre-softmax logits ({self.inception.num_classes} classes)",
            "features": "avg_pool (2048-d), images resized to 299x299",
        }


def load_judges(workdir, config, classifier_path=None):
    """The judges `config.eval` asks for; clear errors when one is missing.

    `classifier_path` names another run's classifier, so that runs are judged
    by one network (default: the workdir's own).
    """
    eval_config = config.eval
    classifier = None
    try:
        classifier = domain_classifier.load_domain_classifier(workdir, classifier_path)
        classifier_path = classifier_path or domain_classifier.classifier_path(workdir)
    except FileNotFoundError:
        if eval_config.feature_network == "domain" or classifier_path is not None:
            raise
    if classifier is not None and classifier.image_size != config.data.image_size:
        raise ValueError(
            f"the domain classifier {classifier_path} reads {classifier.image_size}-pixel images but "
            f"data.image_size is {config.data.image_size}; judge with a classifier trained on this "
            f"data (`sagan-tf train-classifier --workdir {workdir.path}`)")
    if eval_config.feature_network == "domain":
        return Judges("domain", classifier, classifier_path)
    if not eval_config.inception_weights:
        raise ValueError("eval.feature_network=inception_v3 needs eval.inception_weights, the path of a "
                         "local Inception-v3 weights file (nothing is downloaded)")
    from sagan_tf.evaluation.feature_networks import InceptionFeatures

    inception = InceptionFeatures(weights_path=eval_config.inception_weights,
                                  num_classes=eval_config.inception_classes)
    return Judges("inception_v3", classifier, classifier_path, inception, eval_config.inception_weights)


class Collector:
    """Runs the judges over image batches, keeping only their outputs and alignment counts.

    Args:
        judges: a `Judges`.
        truths: one {head: label} per image to come, or None (no alignment).
        mask: which images count for alignment (default: all).
    """

    def __init__(self, judges, truths=None, mask=None):
        self.judges = judges
        self.score_logits, self.features = [], []
        self.alignment = None
        if judges.classifier is not None and truths is not None:
            self.alignment = alignment.BatchedAlignment(judges.classifier, truths, mask)

    def add(self, images):
        score_logits, features, head_logits = self.judges(images)
        self.score_logits.append(score_logits)
        self.features.append(features)
        if self.alignment is not None:
            self.alignment.add(head_logits)

    def arrays(self):
        return np.concatenate(self.score_logits), np.concatenate(self.features)


def _progress(total, verbose, label):
    if verbose:
        print(label)
        return keras.utils.Progbar(total, unit_name="image")
    return None


def generated_outputs(model, judges, texts, truths, noise, batch_size, verbose):
    """Generates an image per caption in batches; returns (collector, the first few images)."""
    collector = Collector(judges, truths)
    progress = _progress(len(texts), verbose, f"generating and scoring {len(texts)} images")
    samples = []
    for start in range(0, len(texts), batch_size):
        stop = min(start + batch_size, len(texts))
        images = model.images(model.embed(texts[start:stop]), noise[start:stop])
        collector.add(images)
        samples.extend(images[:NUM_SAMPLES - len(samples)])
        if progress:
            progress.update(stop)
    return collector, np.stack(samples)


def real_outputs(judges, images, truths, mask, batch_size, verbose):
    """The judges' outputs on real uint8 images."""
    collector = Collector(judges, truths, mask)
    progress = _progress(len(images), verbose, f"scoring {len(images)} real test images")
    for start in range(0, len(images), batch_size):
        stop = min(start + batch_size, len(images))
        collector.add(pixels.to_model_range(images[start:stop]))
        if progress:
            progress.update(stop)
    return collector


def real_order(examples, seed):
    """The order to score real images in: by name, then a seeded shuffle.

    IS splits and KID blocks are contiguous, and data sets list their test
    images by class; this order does not depend on how they are listed.
    """
    by_name = sorted(range(len(examples)), key=lambda i: examples[i].name)
    return np.asarray(by_name, int)[np.random.default_rng(seed).permutation(len(examples))]


def versions():
    return {
        "sagan_tf": sagan_tf.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tensorflow-gan": importlib.metadata.version("tensorflow-gan"),
        "numpy": np.__version__,
    }


def score(fake, real, network):
    """IS of the generated and the real images, FID and KID between them."""
    fake_logits, fake_features = fake.arrays()
    real_logits, real_features = real.arrays()
    is_mean, is_std = metrics.inception_score(fake_logits, splits=IS_SPLITS)
    # IS cannot exceed the images in a split: compare generated and real with that in view.
    results = {
        "inception_score": {"mean": is_mean, "std": is_std, "splits": IS_SPLITS,
                            "images_per_split": len(fake_logits) // IS_SPLITS, "feature_network": network},
    }
    if len(real_logits) >= IS_SPLITS:
        real_mean, real_std = metrics.inception_score(real_logits, splits=IS_SPLITS)
        results["inception_score_real"] = {"mean": real_mean, "std": real_std, "splits": IS_SPLITS,
                                           "images_per_split": len(real_logits) // IS_SPLITS,
                                           "feature_network": network}
    kid, kid_error = metrics.kernel_distance(real_features, fake_features, max_block_size=KID_BLOCK_SIZE)
    results["fid"] = {"value": metrics.frechet_distance(real_features, fake_features),
                      "feature_network": network}
    results["kid"] = {"value": kid, "standard_error": None if np.isnan(kid_error) else kid_error,
                      "block_size": KID_BLOCK_SIZE, "feature_network": network,
                      "blocks": metrics.kernel_distance_blocks(len(real_features), len(fake_features), KID_BLOCK_SIZE)}
    return results


def evaluate(workdir, config, checkpoint=None, verbose=1, classifier_path=None):
    """Runs the protocol; returns (report dict, the first generated images and their captions).

    `classifier_path` judges with another run's domain classifier (default: the workdir's).
    """
    from sagan_tf.inference import TextToImage

    started = time.time()
    eval_config = config.eval
    # Missing models fail here, before the data set is read.
    judges = load_judges(workdir, config, classifier_path)
    model = TextToImage.from_workdir(workdir, config, checkpoint)
    dataset = registry.load_dataset(config.data, workdir.data_cache_dir(config))
    judges.check_reads(dataset)
    real_images, real_examples = prepare.split_images(
        dataset, "test", config.data.image_size, workdir.data_cache_dir(config))
    order = real_order(real_examples, eval_config.seed)
    real_images, real_examples = real_images[order], [real_examples[i] for i in order]
    texts, owners = evaluation_captions(dataset, eval_config.num_images, eval_config.seed)
    try:
        metrics.kernel_distance_blocks(len(real_images), len(texts), KID_BLOCK_SIZE)
    except ValueError as error:  # found before the images are made, not after
        raise ValueError(f"eval.num_images={len(texts)} is too many for KID against {len(real_images)} "
                         f"real test images: {error}") from None
    with_alignment = judges.classifier is not None
    truths = [domain_classifier.truth(dataset, e, k) for e, k in owners] if with_alignment else None
    # All the noise up front, so that image i is the same whatever the batch size.
    noise = model.noise(len(texts), eval_config.seed)

    fake, samples = generated_outputs(model, judges, texts, truths, noise, eval_config.batch_size, verbose)
    real_truths = [domain_classifier.truth(dataset, e) for e in real_examples] if with_alignment else None
    unseen = domain_classifier.unseen_mask(real_examples)
    real = real_outputs(judges, real_images, real_truths, unseen, eval_config.batch_size, verbose)
    network = judges.feature_network
    report = {
        "dataset": dataset.name,
        "checkpoint": os.path.abspath(checkpoint or workdir.latest_generator),
        "generator_id": weights_digest(model.generator),
        "encoder_id": (encoder_training.read_metadata(workdir) or {}).get("encoder_id"),
        "feature_network": judges.describe(),
        "num_images": len(texts),
        "num_real_images": len(real_images),
        "seeds": {"captions": eval_config.seed, "noise": eval_config.seed, "real_order": eval_config.seed},
        "metrics": score(fake, real, network),
    }
    if with_alignment:
        # The domain classifier is fitted on most real images, test ones included,
        # so its features of these are not those of unseen pictures.
        report["num_real_images_in_classifier_training"] = int(np.sum(~unseen))
        report["alignment"] = {
            "classifier": judges.classifier_path,
            "classifier_id": judges.classifier_id,
            "generated": fake.alignment.result(),
            # Real test images the classifier was never fitted on, read against their own captions.
            "real_ceiling": real.alignment.result(),
        }
    else:
        report["alignment"] = {"skipped": "no domain classifier in the workdir "
                                          "(`sagan-tf train-classifier` trains one)"}
    report.update(versions=versions(), config=config.to_dict(), seconds=round(time.time() - started, 1))
    return report, (samples, texts[:len(samples)])
