#!/usr/bin/env python3
"""Ask a TF Serving server for pictures of captions and save them as one PNG.

    python scripts/serving_client.py "a red circle on a blue background" --seed 7
    python scripts/serving_client.py "a red circle" --print-body   # the JSON only

REST by default (standard library only); `--grpc HOST:8500` uses gRPC and
needs the tensorflow-serving-api package. Without --seed the server draws
fresh noise on every request.
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

import numpy as np
from PIL import Image

from sagan_tf.deploy import serving_request


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("captions", nargs="+", help="one picture per caption")
    parser.add_argument("--server", default=f"http://localhost:{serving_request.REST_PORT}",
                        help="REST address of TF Serving")
    parser.add_argument("--model", default="text2image", help="model name in models.config")
    parser.add_argument("--version", type=int, default=None, help="model version (default: the newest)")
    parser.add_argument("--seed", type=int, default=None, help="the same seed gives the same pictures")
    parser.add_argument("--out", default="generated.png", help="PNG path")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server")
    parser.add_argument("--print-body", action="store_true", help="print the REST request body and exit")
    parser.add_argument("--grpc", metavar="HOST:PORT", default=None,
                        help="use gRPC at this address instead of REST")
    args = parser.parse_args(argv)
    # Checked before asking the server, not after it has drawn the pictures.
    if not args.print_body:
        if os.path.splitext(args.out)[1].lower() != ".png" or os.path.isdir(args.out):
            parser.error(f"--out must name a .png file, got {args.out!r}")
        if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
            parser.error(f"--out: the folder of {args.out!r} does not exist")
    return args


def predict_rest(args):
    body = json.dumps(serving_request.rest_body(args.captions, args.seed)).encode("utf-8")
    url = serving_request.predict_url(args.server, args.model, args.version)
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            return serving_request.rest_outputs(_json_reply(response.read(), url, response.status))
    except urllib.error.HTTPError as error:
        # TF Serving explains a refused request in the JSON body of the error.
        return serving_request.rest_outputs(_json_reply(error.read(), url, error.code))
    except urllib.error.URLError as error:
        raise OSError(f"cannot reach {url}: {error.reason}") from None


def _json_reply(body, url, status):
    """The parsed JSON object of a reply; a ValueError naming the address when it is none (a proxy's page)."""
    try:
        reply = json.loads(body)
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        text = " ".join(body.decode("utf-8", "replace").split())[:200]
        raise ValueError(f"{url} answered HTTP {status} with no JSON object (is it TF Serving's REST port?): "
                         f"{text!r}")
    return reply


def predict_grpc(args):
    # First: without tensorflow-serving-api it says which package to install.
    request = serving_request.grpc_request(args.captions, args.model, args.seed, version=args.version)
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(args.grpc))
    try:
        response = stub.Predict(request, timeout=args.timeout)
    except grpc.RpcError as error:  # unreachable, timed out, or refused: the server's words
        raise OSError(f"{args.grpc}: {error.code().name}: {error.details()}") from None
    return tf.make_ndarray(response.outputs["images"]), tf.make_ndarray(response.outputs["token_ids"])


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.print_body:
            print(json.dumps(serving_request.rest_body(args.captions, args.seed), ensure_ascii=False))
            return 0
        images, token_ids = predict_grpc(args) if args.grpc else predict_rest(args)
        if images.ndim != 4 or len(images) != len(args.captions):
            raise ValueError(f"the server sent images of shape {list(images.shape)} for "
                             f"{len(args.captions)} caption(s)")
    except (ValueError, ImportError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    Image.fromarray(np.concatenate(list(images), axis=1)).save(args.out)
    print(json.dumps({"out": args.out, "images": len(images), "token_ids": token_ids.tolist()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
