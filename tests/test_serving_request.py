import http.server
import importlib.util
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from sagan_tf.config import ExportConfig
from sagan_tf.deploy import serving_request
from tests.deploy_fixture import CAPTIONS, MAX_BATCH, NOISE_DIM
from tests.deploy_fixture import savedmodel_export, tiny_workdir  # noqa: F401  (pytest fixtures)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT = os.path.join(REPO, "scripts", "serving_client.py")
MODEL_NAME = ExportConfig().model_name


@pytest.fixture(scope="module")
def loaded(savedmodel_export):
    return tf.saved_model.load(savedmodel_export["path"])


def predict(loaded, body):
    """What TF Serving does with a columnar REST body: typed tensors in, lists out."""
    signature = loaded.signatures[body.get("signature_name", "serving_default")]
    specs = signature.structured_input_signature[1]
    tensors = {name: tf.constant(value, specs[name].dtype) for name, value in body["inputs"].items()}
    return {"outputs": {name: value.numpy().tolist() for name, value in signature(**tensors).items()}}


def bodies():
    z = np.random.default_rng(0).normal(size=(2, NOISE_DIM))
    return {
        "serving_default": serving_request.rest_body(CAPTIONS[:2]),
        "generate_seeded": serving_request.rest_body(CAPTIONS[:2], seed=11),
        "generate_with_noise": serving_request.rest_body(CAPTIONS[:2], z=z),
    }


def test_each_body_matches_its_signature_names_dtypes_and_shapes(loaded):
    for name, body in bodies().items():
        assert body["signature_name"] == name
        specs = loaded.signatures[name].structured_input_signature[1]
        assert set(body["inputs"]) == set(specs)
        for input_name, value in json.loads(json.dumps(body))["inputs"].items():
            spec = specs[input_name]
            assert spec.dtype.name == serving_request.INPUT_DTYPES[input_name]
            assert spec.shape.is_compatible_with(np.shape(value)), (name, input_name)
            tf.constant(value, spec.dtype)  # the JSON value converts to the signature's dtype


def test_a_body_runs_like_tf_serving_and_the_response_parses(loaded):
    body = json.loads(json.dumps(bodies()["generate_seeded"]))
    images, token_ids = serving_request.rest_outputs(json.loads(json.dumps(predict(loaded, body))))
    direct = loaded.signatures["generate_seeded"](captions=tf.constant(CAPTIONS[:2]), seed=tf.constant(11, tf.int64))
    np.testing.assert_array_equal(images, direct["images"])
    np.testing.assert_array_equal(token_ids, direct["token_ids"])
    assert images.dtype == np.uint8 and token_ids.dtype == np.int32


class StandInServer(http.server.ThreadingHTTPServer):
    """TF Serving's REST predict endpoint over the loaded SavedModel."""

    def __init__(self, loaded):
        super().__init__(("127.0.0.1", 0), PredictHandler)
        self.loaded = loaded
        self.bodies = []

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class PredictHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != f"/v1/models/{MODEL_NAME}:predict":
            return self.reply(404, {"error": f"Servable not found for request: {self.path}"})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        try:
            self.reply(200, predict(self.server.loaded, body))
        except tf.errors.InvalidArgumentError as error:
            self.reply(400, {"error": error.message})

    def reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(loaded):
    server = StandInServer(loaded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_client(*args, cwd):
    return subprocess.run([sys.executable, CLIENT, *args], cwd=cwd, capture_output=True, text=True)


def test_client_script_gets_the_seeded_pictures(server, loaded, tmp_path):
    result = run_client(*CAPTIONS[:2], "--server", server.url, "--seed", "9", "--out", "pair.png",
                        cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert server.bodies == [serving_request.rest_body(CAPTIONS[:2], seed=9)]
    expected = loaded.signatures["generate_seeded"](captions=tf.constant(CAPTIONS[:2]), seed=tf.constant(9, tf.int64))
    pixels = np.asarray(Image.open(tmp_path / "pair.png"))
    np.testing.assert_array_equal(pixels, np.concatenate(list(expected["images"].numpy()), axis=1))
    assert json.loads(result.stdout)["token_ids"] == expected["token_ids"].numpy().tolist()


def test_client_script_reports_a_refused_request(server, tmp_path):
    result = run_client(*["a red circle"] * (MAX_BATCH + 1), "--server", server.url, cwd=str(tmp_path))
    assert result.returncode == 2
    assert f"more than {MAX_BATCH} captions in one request" in result.stderr
    assert not os.path.exists(tmp_path / "generated.png")


class CannedReplyHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with the server's (status, content type, body): a proxy or another service."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        status, content_type, body = self.server.canned
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("canned, expected", [
    ((502, "text/html", b"<html><body>Bad Gateway</body></html>"), "answered HTTP 502 with no JSON object"),
    ((200, "application/json", b"[1, 2]"), "answered HTTP 200 with no JSON object"),
    ((200, "application/json", b'{"outputs": {"images": [], "token_ids": []}}'),
     "images of shape [0] for 1 caption(s)"),
])
def test_client_script_explains_a_reply_that_is_not_pictures(canned, expected, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CannedReplyHandler)
    server.canned = canned
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_client("a red circle", "--server", f"http://127.0.0.1:{server.server_address[1]}",
                            cwd=str(tmp_path))
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 2 and result.stderr.startswith("error: ") and expected in result.stderr
    assert "Traceback" not in result.stderr and not os.path.exists(tmp_path / "generated.png")


def test_client_script_checks_out_before_asking_and_says_what_grpc_needs(tmp_path):
    for out, expected in [("noext", "--out must name a .png file"),
                          (str(tmp_path / "absent" / "x.png"), "the folder of")]:
        result = run_client("a red circle", "--server", "http://127.0.0.1:9", "--out", out, cwd=str(tmp_path))
        assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr
    if importlib.util.find_spec("tensorflow_serving") is None:
        result = run_client("a red circle", "--grpc", "127.0.0.1:9", cwd=str(tmp_path))
        assert result.returncode == 2 and "pip install tensorflow-serving-api" in result.stderr


def test_client_script_prints_the_body_without_a_server(tmp_path):
    result = run_client("a red circle", "--seed", "3", "--print-body", cwd=str(tmp_path))
    assert json.loads(result.stdout) == {"signature_name": "generate_seeded",
                                         "inputs": {"captions": ["a red circle"], "seed": 3}}


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="list of strings"):
        serving_request.rest_body("a red circle")
    with pytest.raises(ValueError, match="no captions"):
        serving_request.rest_body([])
    with pytest.raises(ValueError, match="a seed or the noise z, not both"):
        serving_request.rest_body(["a"], seed=1, z=np.zeros((1, NOISE_DIM)))
    with pytest.raises(ValueError, match=r"z must have shape \[captions, noise_dim\] = \[2, ...\]"):
        serving_request.rest_body(["a", "b"], z=np.zeros((3, NOISE_DIM)))
    with pytest.raises(ValueError, match="refused the request: boom"):
        serving_request.rest_outputs({"error": "boom"})
    with pytest.raises(ValueError, match="no outputs.images"):
        serving_request.rest_outputs({"outputs": [1, 2]})


def test_predict_url():
    assert serving_request.predict_url("http://host:8501/", "m") == "http://host:8501/v1/models/m:predict"
    assert serving_request.predict_url("http://h:1", "m", 3) == "http://h:1/v1/models/m/versions/3:predict"


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_serving") is not None,
                    reason="tensorflow-serving-api is installed")
def test_grpc_request_says_which_package_it_needs():
    with pytest.raises(ImportError, match="tensorflow-serving-api"):
        serving_request.grpc_request(["a red circle"], MODEL_NAME)


def test_models_config_serves_the_default_export_folder():
    with open(os.path.join(REPO, "export", "serving", "models.config")) as f:
        text = f.read()
    assert f'name: "{MODEL_NAME}"' in text and f'base_path: "/models/{MODEL_NAME}"' in text
    assert 'model_platform: "tensorflow"' in text
