"""`sagan-tf train-classifier` and `sagan-tf evaluate`."""

from sagan_tf import cli
from sagan_tf.commands.common import (
    flags,
    out_path,
    quiet_flag,
    setup,
    setup_with_dataset,
    verbosity,
)


@cli.command("train-classifier", "train the domain classifier (feature network and alignment judge) "
                                 "on the real images")
@flags(quiet_flag)
def train_classifier(args):
    from sagan_tf.evaluation import domain_classifier, report

    workdir, config, dataset = setup_with_dataset(args)
    result = domain_classifier.train_domain_classifier(workdir, config, dataset,
                                                       verbose=verbosity(args, 2))
    for line in report.accuracy_lines("real images never fitted on", result["real_accuracy"]):
        print(line)
    print(f"domain classifier: {result['classifier']}")
    return result


def _evaluate_flags(parser):
    parser.add_argument("--checkpoint", default=None, help="generator .keras file (default: the latest)")
    parser.add_argument("--classifier", default=None,
                        help="judge with this classifier.keras, e.g. another run's, so that runs are "
                             "compared under one network (default: the workdir's)")
    parser.add_argument("--out", default=None,
                        help="report JSON path; the PNG goes beside it (default: <workdir>/report.json)")
    quiet_flag(parser)


@cli.command("evaluate", "Inception Score, FID, KID and text–image alignment of the generator")
@flags(_evaluate_flags)
def evaluate(args):
    from sagan_tf.evaluation import evaluate as evaluation
    from sagan_tf.evaluation import report as report_lib

    workdir, config = setup(args)
    out = out_path(args, workdir.join("report.json"))
    report_lib.check_path(out)  # before the long evaluation, not after
    report, (images, captions) = evaluation.evaluate(workdir, config, args.checkpoint,
                                                     verbose=verbosity(args), classifier_path=args.classifier)
    json_path, png_path = report_lib.write(report, images, captions, out)
    for line in report_lib.summary_lines(report):
        print(line)
    print(f"wrote {json_path} and {png_path}")
    return {"report": json_path, "page": png_path, "metrics": report["metrics"],
            "alignment": report["alignment"]}
