"""The evaluation protocol and `sagan-tf evaluate` on a tiny workdir made without GAN training."""

import contextlib
import dataclasses
import io
import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from sagan_tf import cli
from sagan_tf import config as config_lib
from sagan_tf.data import registry, shapes
from sagan_tf.digests import weights_digest
from sagan_tf.evaluation import domain_classifier, evaluate
from sagan_tf.evaluation.domain_classifier import DomainClassifier
from sagan_tf.models.generator import Generator
from sagan_tf.text.tokenizer import CaptionTokenizer
from sagan_tf.training import encoder_training
from sagan_tf.workdir import Workdir
from tests.deploy_fixture import spread_weights
from tests.tiny_configs import TINY_DATA, TINY_ENCODER, TINY_GAN

NUM_IMAGES = 20
TINY_EVAL = [f"eval.num_images={NUM_IMAGES}", "eval.batch_size=8", "eval.classifier_epochs=1",
             "eval.classifier_width=4"]


def make_workdir(path):
    """Encoder, tokenizer and generator saved where training would leave them; no training."""
    workdir = Workdir(path).ensure()
    config = config_lib.from_dict({}, TINY_DATA + TINY_ENCODER + TINY_GAN + TINY_EVAL)
    config.save(workdir.config_path)
    dataset = registry.load_dataset(config.data, workdir.data_cache_dir(config))
    keras.utils.set_random_seed(0)
    tokenizer = CaptionTokenizer.adapt(dataset.captions("train"), config.data.max_length)
    encoder = encoder_training.build_encoder(config.encoder, tokenizer.vocabulary_size)
    encoder(tokenizer(dataset.captions("train")[:2]))
    spread_weights(encoder, np.random.default_rng(0))
    encoder_training.save_encoder(workdir.encoder_dir, encoder, tokenizer, dataset)
    generator = Generator(noise_dim=config.gan.noise_dim, condition_dim=config.encoder.output_dim,
                          image_size=config.data.image_size, ngf=config.gan.ngf, final_channels=8)
    spread_weights(generator, np.random.default_rng(1))
    os.makedirs(os.path.join(workdir.gan_dir, "checkpoints"))
    generator.save(os.path.join(workdir.gan_dir, "checkpoints", "generator-latest.keras"))
    return workdir, config, dataset


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """(workdir, config, dataset) with a domain classifier trained by the CLI."""
    workdir, config, dataset = make_workdir(str(tmp_path_factory.mktemp("evaluate") / "run"))
    assert cli.main(["train-classifier", "--workdir", workdir.path, "--quiet"]) == 0
    return workdir, config, dataset


@pytest.fixture(scope="module")
def cli_report(tiny_run, tmp_path_factory):
    """The report JSON path and the printed text of one `sagan-tf evaluate`."""
    workdir = tiny_run[0]
    out = str(tmp_path_factory.mktemp("report") / "report.json")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(["evaluate", "--workdir", workdir.path, "--out", out, "--quiet"]) == 0
    return out, printed.getvalue()


def test_evaluation_captions_are_seeded_and_cycle_through_the_test_split(tiny_shapes):
    test_captions = sum(len(e.captions) for e in tiny_shapes.splits["test"])
    texts, owners = evaluate.evaluation_captions(tiny_shapes, test_captions + 5, seed=4)

    assert len(texts) == test_captions + 5
    first_pass = [(e.name, k) for e, k in owners[:test_captions]]
    assert len(set(first_pass)) == test_captions  # every test caption once before any repeats
    assert all(e.captions[k] == text for text, (e, k) in zip(texts, owners))
    assert evaluate.evaluation_captions(tiny_shapes, 30, seed=4)[0] == texts[:30]
    assert evaluate.evaluation_captions(tiny_shapes, 30, seed=5)[0] != texts[:30]


def test_cli_writes_the_report_json_with_its_provenance(tiny_run, cli_report):
    workdir, config, dataset = tiny_run
    out, printed = cli_report
    with open(out) as f:
        report = json.load(f)

    assert report["num_images"] == NUM_IMAGES
    seed = config.eval.seed
    assert report["seeds"] == {"captions": seed, "noise": seed, "real_order": seed}
    with open(os.path.join(workdir.encoder_dir, "encoder.json")) as f:
        assert report["encoder_id"] == json.load(f)["encoder_id"]
    generator = keras.saving.load_model(workdir.latest_generator)
    assert report["generator_id"] == weights_digest(generator)
    assert report["checkpoint"] == workdir.latest_generator
    assert report["feature_network"]["name"] == "domain"
    assert report["feature_network"]["source"].startswith(workdir.path)
    assert "60 classes" in report["feature_network"]["score_logits"]
    for name in ("inception_score", "inception_score_real", "fid", "kid"):
        assert report["metrics"][name]["feature_network"] == "domain"
    inception = report["metrics"]["inception_score"]
    assert 1.0 <= inception["mean"] <= 60.0 and inception["std"] >= 0.0
    # IS cannot exceed the images in a split.
    assert inception["images_per_split"] == NUM_IMAGES // 10 and inception["mean"] <= NUM_IMAGES // 10
    assert report["metrics"]["inception_score_real"]["images_per_split"] == len(dataset.splits["test"]) // 10
    assert report["metrics"]["fid"]["value"] >= 0.0
    assert report["metrics"]["kid"]["blocks"] == 1
    assert report["versions"]["tensorflow-gan"] == "2.1.0"
    assert report["versions"]["keras"] == keras.__version__
    assert report["config"] == config.to_dict()

    test_images = dataset.splits["test"]
    assert report["num_real_images"] == len(test_images)
    _, owners = evaluate.evaluation_captions(dataset, NUM_IMAGES, config.eval.seed)
    held_out = sum((e.attributes[k]["shape"], e.attributes[k]["color"]) in shapes.HELD_OUT_PAIRS
                   for e, k in owners)
    generated = report["alignment"]["generated"]
    assert generated["all"]["count"] == NUM_IMAGES
    assert generated.get("held_out_pairs", {"count": 0})["count"] == held_out
    ceiling = report["alignment"]["real_ceiling"]["all"]
    assert ceiling["count"] == int(domain_classifier.unseen_mask(test_images).sum())
    assert report["num_real_images_in_classifier_training"] == len(test_images) - ceiling["count"]
    for accuracies in (generated["all"], ceiling):
        assert set(accuracies) == {"count", "shape", "color", "background", "size", "position",
                                   "all_correct"}
        assert 0.0 <= accuracies["all_correct"] <= min(accuracies["shape"], accuracies["color"]) <= 1.0

    assert f"generated, all ({NUM_IMAGES}): shape" in printed
    assert f"({NUM_IMAGES // 10} images per split)" in printed and "(1 blocks)" in printed
    fitted = report["num_real_images_in_classifier_training"]
    assert f"the classifier was fitted on {fitted} of the real test images" in printed
    assert "real ceiling, all" in printed


def test_cli_writes_a_one_page_png_beside_the_json(cli_report):
    page = cli_report[0][:-len(".json")] + ".png"
    with Image.open(page) as image:
        assert image.size == (827, 1169)  # A4 portrait at 100 dpi
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 10  # samples, bars and text, not a blank page


def test_results_do_not_depend_on_the_batch_size(tiny_run):
    workdir, config, _ = tiny_run
    reports = []
    for batch_size in (3, NUM_IMAGES):
        changed = dataclasses.replace(config, eval=dataclasses.replace(config.eval, batch_size=batch_size))
        reports.append(evaluate.evaluate(workdir, changed, verbose=0)[0])

    assert reports[0]["alignment"] == reports[1]["alignment"]
    for name in ("inception_score", "fid", "kid"):
        for key, value in reports[0]["metrics"][name].items():
            if isinstance(value, float):
                assert value == pytest.approx(reports[1]["metrics"][name][key], rel=1e-4, abs=1e-6)


def test_results_do_not_depend_on_the_order_the_data_set_lists_its_test_images(tiny_run, monkeypatch):
    """Real data sets list test images by class; IS splits and KID blocks are contiguous."""
    workdir, config, _ = tiny_run
    as_listed = evaluate.evaluate(workdir, config, verbose=0)[0]
    load_dataset = registry.load_dataset

    def reversed_test_split(*args):
        dataset = load_dataset(*args)
        dataset.splits["test"] = dataset.splits["test"][::-1]
        return dataset

    monkeypatch.setattr(registry, "load_dataset", reversed_test_split)
    reordered = evaluate.evaluate(workdir, config, verbose=0)[0]
    for name in ("inception_score", "inception_score_real", "fid", "kid"):
        for key, value in as_listed["metrics"][name].items():
            if isinstance(value, float):
                assert value == pytest.approx(reordered["metrics"][name][key], rel=1e-6), (name, key)
    assert as_listed["alignment"] == reordered["alignment"]


def test_too_many_images_for_kid_blocks_are_refused_before_any_is_made(tiny_run):
    workdir, config, dataset = tiny_run
    real = len(dataset.splits["test"])
    too_many = 1024 * (real // 2 + 1)  # ceil(n / 1024) blocks of fewer than 2 real images
    changed = dataclasses.replace(config, eval=dataclasses.replace(config.eval, num_images=too_many))
    with pytest.raises(ValueError, match=f"eval.num_images={too_many} is too many for KID against {real} real"):
        evaluate.evaluate(workdir, changed, verbose=0)


def test_inception_v3_without_a_weights_file_is_a_clear_error(tiny_run):
    workdir, config, _ = tiny_run
    inception = dataclasses.replace(
        config, eval=dataclasses.replace(config.eval, feature_network="inception_v3"))
    with pytest.raises(ValueError, match="eval.inception_weights"):
        evaluate.load_judges(workdir, inception)
    missing = dataclasses.replace(inception, eval=dataclasses.replace(
        inception.eval, inception_weights=os.path.join(workdir.path, "no_such.weights.h5")))
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        evaluate.load_judges(workdir, missing)


def test_evaluate_without_a_classifier_names_the_command_to_run(tiny_run, tmp_path, capsys):
    config = tiny_run[1]
    with pytest.raises(FileNotFoundError, match="sagan-tf train-classifier"):
        evaluate.load_judges(Workdir(str(tmp_path)), config)
    # The tiny config, so that a failure to fail would not build the full data set.
    config.save(Workdir(str(tmp_path)).config_path)
    assert cli.main(["evaluate", "--workdir", str(tmp_path), "--out", str(tmp_path / "r.json")]) == 2
    assert "no domain classifier" in capsys.readouterr().err


def test_train_classifier_keeps_a_classifier_trained_with_the_same_settings(tiny_run, capsys):
    workdir = tiny_run[0]
    path = domain_classifier.classifier_path(workdir)
    with open(os.path.join(domain_classifier.classifier_dir(workdir), "classifier.json")) as f:
        recorded = json.load(f)
    loaded = domain_classifier.load_domain_classifier(workdir)
    assert recorded["classifier_id"] == weights_digest(loaded)
    modified = os.path.getmtime(path)

    assert cli.main(["train-classifier", "--workdir", workdir.path, "--quiet"]) == 0

    assert "already trained with these settings" in capsys.readouterr().out
    assert os.path.getmtime(path) == modified
    assert weights_digest(domain_classifier.load_domain_classifier(workdir)) == recorded["classifier_id"]


def test_the_report_names_the_classifier_that_judged(tiny_run, cli_report):
    with open(cli_report[0]) as f:
        report = json.load(f)
    own = domain_classifier.classifier_path(tiny_run[0])
    with open(os.path.join(domain_classifier.classifier_dir(tiny_run[0]), "classifier.json")) as f:
        recorded = json.load(f)
    assert report["feature_network"]["source"] == report["alignment"]["classifier"] == own
    assert report["feature_network"]["id"] == report["alignment"]["classifier_id"] == recorded["classifier_id"]


def test_evaluate_judges_with_another_runs_classifier(tiny_run, cli_report, tmp_path, capsys):
    """A second run without a classifier of its own, judged by the first run's."""
    judge = domain_classifier.classifier_path(tiny_run[0])
    other = make_workdir(str(tmp_path / "other"))[0]
    out = str(tmp_path / "report.json")

    assert cli.main(["evaluate", "--workdir", other.path, "--classifier", judge, "--out", out,
                     "--quiet"]) == 0

    with open(out) as f:
        report = json.load(f)
    with open(cli_report[0]) as f:
        own_report = json.load(f)
    assert report["feature_network"]["source"] == report["alignment"]["classifier"] == judge
    assert report["feature_network"]["id"] == own_report["feature_network"]["id"]
    # The same generator, captions, noise and judge: the same numbers as the first run's own report.
    assert report["alignment"] == own_report["alignment"]
    assert report["metrics"]["fid"]["value"] == pytest.approx(own_report["metrics"]["fid"]["value"], rel=1e-5)
    assert not os.path.exists(domain_classifier.classifier_dir(other))

    missing = str(tmp_path / "no_such.keras")
    assert cli.main(["evaluate", "--workdir", other.path, "--classifier", missing, "--out", out]) == 2
    assert "--classifier" in capsys.readouterr().err


def test_a_classifier_of_other_labels_is_refused(tiny_run, tmp_path):
    workdir, config, _ = tiny_run
    species = DomainClassifier({"class": ["albatross", "wren"]}, ("class",),
                               image_size=config.data.image_size, width=4)
    species(np.zeros((1, config.data.image_size, config.data.image_size, 3), np.float32))
    path = str(tmp_path / "species.keras")
    species.save(path)

    with pytest.raises(ValueError, match="reads other labels"):
        evaluate.evaluate(workdir, config, verbose=0, classifier_path=path)


def test_a_report_path_that_is_not_json_is_refused_before_evaluating(tiny_run, tmp_path, capsys):
    out = str(tmp_path / "report.txt")
    assert cli.main(["evaluate", "--workdir", tiny_run[0].path, "--out", out, "--quiet"]) == 2
    assert f"the report path must end in .json, got {out!r}" in capsys.readouterr().err
    assert not os.listdir(tmp_path)
