"""`sagan-tf export`: a SavedModel for TF Serving or TFLite files for phones."""

from sagan_tf import cli
from sagan_tf.commands.common import flags, out_path, setup

FORMATS = ("savedmodel", "tflite")


def _export_flags(parser):
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument("--out", default=None,
                        help="savedmodel: the model's folder, versions 1, 2, ... go inside "
                             "(default: <workdir>/export/<export.model_name>); "
                             "tflite: the folder to write (default: <workdir>/export/tflite-<quantize>)")
    # Checked by the exporter: its list lives beside the converter settings.
    parser.add_argument("--quantize", default=None,
                        help="tflite weights: none (float32, the default), float16 or dynamic_int8")
    parser.add_argument("--batch", type=int, default=None,
                        help="tflite: the fixed batch size (default: export.tflite_batch)")
    parser.add_argument("--checkpoint", default=None, help="generator .keras file (default: the latest)")


@cli.command("export", "export the model for TF Serving (SavedModel) or for phones (TFLite)")
@flags(_export_flags)
def export(args):
    workdir, config = setup(args)
    if args.format == "savedmodel":
        if args.quantize is not None or args.batch is not None:
            raise ValueError("--quantize and --batch apply to --format tflite only "
                             "(a SavedModel takes any batch up to export.max_batch)")
        from sagan_tf.deploy.savedmodel import export_savedmodel

        result = export_savedmodel(workdir, config, out_path(args), args.checkpoint)
        print(f"wrote version {result['version']}: {result['path']} "
              f"(signatures {', '.join(result['signatures'])})")
        return result

    from sagan_tf.deploy.tflite import export_tflite

    result = export_tflite(workdir, config, out_path(args), args.quantize or "none", args.batch, args.checkpoint)
    for name, card in result["models"].items():
        print(f"{name}: {card['bytes'] / 1e6:.2f} MB, |TFLite - Keras| max {card['max_abs_error_vs_keras']:.2g}, "
              f"mean {card['mean_abs_error_vs_keras']:.2g}")
    print(f"wrote {result['out_dir']}")
    return result
