"""The text encoder's bag-of-words reference on the CUB captions: TF-IDF + logistic regression.

Reads the same data set and split as `sagan-tf train-encoder --config C`
(captions only), fits TF-IDF n-grams + multinomial logistic regression on the
training captions, picks the regularisation C on the validation captions and
reports caption → class accuracy on the held-out (test) captions, so that
the encoder rows of the README and this reference come from the same split.

Needs scikit-learn, which is not a dependency of sagan_tf:

    pip install scikit-learn==1.9.1
    python benchmarks/cub_tfidf_reference.py --config configs/cub_real.yaml
"""

import argparse
import json
import sys

import numpy as np

from sagan_tf import config as config_lib, errors
from sagan_tf.data import registry

C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)


def labelled_captions(dataset, split):
    texts, labels = [], []
    for example in dataset.splits[split]:
        texts.extend(example.captions)
        labels.extend([example.label] * len(example.captions))
    return texts, np.array(labels)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/cub_real.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--max-ngram", type=int, default=2, help="word n-grams 1..N (2 = bigrams)")
    args = parser.parse_args(argv)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    config = config_lib.load(args.config, ["data.captions_only=true", *args.set])
    dataset = registry.load_dataset(config.data, cache_dir="")
    train, validation, test = (labelled_captions(dataset, s) for s in ("train", "validation", "test"))
    vectorizer = TfidfVectorizer(ngram_range=(1, args.max_ngram), sublinear_tf=True)
    train_features = vectorizer.fit_transform(train[0])
    rows = []
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=3000).fit(train_features, train[1])
        rows.append({"C": c,
                     "validation_accuracy": model.score(vectorizer.transform(validation[0]), validation[1]),
                     "test_accuracy": model.score(vectorizer.transform(test[0]), test[1])})
    best = max(rows, key=lambda row: row["validation_accuracy"])
    print(json.dumps({"captions": {"train": len(train[0]), "validation": len(validation[0]),
                                   "test": len(test[0])},
                      "classes": int(len(np.unique(train[1]))), "max_ngram": args.max_ngram,
                      "grid": rows, "chosen_on_validation": best}, indent=1))


if __name__ == "__main__":
    sys.exit(errors.exit_status(main))
