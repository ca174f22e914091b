"""Requests for the TF Serving signatures that `savedmodel` exports.

REST: POST the body of `rest_body` to `predict_url(...)`
(`http://HOST:8501/v1/models/NAME[/versions/V]:predict`). The body uses the
columnar `"inputs"` form: `generate_seeded` takes a scalar seed with no
batch dimension, which the row (`"instances"`) form cannot carry.

gRPC (port 8500): `grpc_request` builds a `PredictRequest`; it needs the
`tensorflow-serving-api` package, which this project does not install.

Nothing here imports TensorFlow at module level, so a client needs only
numpy.
"""

import numpy as np

# The signatures' input dtypes, as `savedmodel` declares them.
INPUT_DTYPES = {"captions": "string", "seed": "int64", "z": "float32"}
REST_PORT = 8501


def signature_for(seed=None, z=None):
    """The signature that takes what the caller gives: nothing, a seed or z."""
    if seed is not None and z is not None:
        raise ValueError("give a seed or the noise z, not both")
    if z is not None:
        return "generate_with_noise"
    return "serving_default" if seed is None else "generate_seeded"


def request_inputs(captions, seed=None, z=None):
    """(signature name, {input name: JSON-ready value}) for one request."""
    if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
        raise ValueError("captions must be a list of strings")
    if not captions:
        raise ValueError("no captions: send at least one")
    signature = signature_for(seed, z)
    inputs = {"captions": list(captions)}
    if seed is not None:
        inputs["seed"] = int(seed)
    if z is not None:
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or len(z) != len(captions):
            raise ValueError(f"z must have shape [captions, noise_dim] = [{len(captions)}, ...], "
                             f"got {list(z.shape)}")
        inputs["z"] = z.tolist()
    return signature, inputs


def rest_body(captions, seed=None, z=None):
    """The JSON body (a dict) of a REST predict request."""
    signature, inputs = request_inputs(captions, seed, z)
    return {"signature_name": signature, "inputs": inputs}


def predict_url(server, model_name, version=None):
    """`server` is `http://host:port`; no version means the newest one."""
    version_part = f"/versions/{int(version)}" if version is not None else ""
    return f"{server.rstrip('/')}/v1/models/{model_name}{version_part}:predict"


def rest_outputs(response):
    """(images uint8 [N, S, S, 3], token_ids int32 [N, L]) of a parsed REST response."""
    if "error" in response:
        raise ValueError(f"the server refused the request: {response['error']}")
    outputs = response.get("outputs")
    if not isinstance(outputs, dict) or not {"images", "token_ids"} <= outputs.keys():
        raise ValueError("the response has no outputs.images and outputs.token_ids "
                         "(is this a sagan_tf text-to-image model?)")
    return np.asarray(outputs["images"], np.uint8), np.asarray(outputs["token_ids"], np.int32)


def grpc_request(captions, model_name, seed=None, z=None, version=None):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` for the same inputs."""
    try:
        from tensorflow_serving.apis import predict_pb2
    except ImportError:
        raise ImportError("gRPC requests need the tensorflow-serving-api package "
                          "(pip install tensorflow-serving-api); the REST body needs nothing") from None
    import tensorflow as tf

    signature, inputs = request_inputs(captions, seed, z)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=INPUT_DTYPES[name]))
    return request
