"""Model server subprocess: the SageMaker PyTorch serving container over SageMaker's container HTTP API.

Run as `python model_worker.py --model-data-url s3://…/model.tar.gz --model-dir DIR --port-file F
--failure-file F`. It downloads and untars the model (boto3 → the emulator via AWS_ENDPOINT_URL), puts
`code/` on sys.path and then does what sagemaker-inference's `Transformer` does (aws/sagemaker-inference-
toolkit `transformer.py`, with the PyTorch container's `DefaultPytorchInferenceHandler` defaults):
imports module `SAGEMAKER_PROGRAM` (default `inference`) if it exists, takes `model_fn`, `input_fn`,
`predict_fn`, `output_fn` and `transform_fn` from it (defaults for the missing; `transform_fn` together
with any of the other three is refused), calls each with `context` only when it has one parameter more
than the toolkit's arguments (another count is a TypeError), loads the model at start, decodes
`application/json` and `text/csv` bodies to str (others stay bytes) and takes `Accept: */*` or none as
`SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT` (default JSON). It serves `GET /ping` and `POST /invocations` on
127.0.0.1 at a free port that it writes to the port file. If loading fails the error's last line goes
to the failure file and the process exits 1. A handler error answers its `status_code` (500 unless it
is a toolkit error carrying one) with `<message>\n<traceback>`, as the toolkit's `handle_error`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import sys
import tarfile
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Running this file puts its own folder first on sys.path; don't let it shadow the model's modules.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

# sagemaker-inference content_types: bodies of these types reach the handlers as str, others as bytes.
JSON, CSV, NPY, NPZ = "application/json", "text/csv", "application/x-npy", "application/x-npz"
UTF8_TYPES = (JSON, CSV)
ENCODABLE = (NPY, CSV, JSON)


class LoadError(Exception):
    """The model could not be loaded (message becomes the endpoint's FailureReason)."""


def _download(url: str, model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    if url.startswith("s3://"):
        import boto3

        bucket, _, key = url[5:].partition("/")
        archive = model_dir.parent / "model.tar.gz"
        try:
            boto3.client("s3").download_file(bucket, key, str(archive))
        except Exception as exc:  # noqa: BLE001
            raise LoadError(f"could not download ModelDataUrl {url}: {exc}") from exc
    else:
        archive = Path(url.removeprefix("file://"))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(model_dir, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise LoadError(f"ModelDataUrl {url} is not a readable model.tar.gz: {exc}") from exc


def _overlay_submit_dir(submit: str, code_dir: Path) -> None:
    """SAGEMAKER_SUBMIT_DIRECTORY given as an S3 sourcedir.tar.gz: unpack it over code/."""
    if not submit.startswith("s3://"):
        return
    import boto3

    bucket, _, key = submit[5:].partition("/")
    archive = code_dir.parent.parent / "sourcedir.tar.gz"
    boto3.client("s3").download_file(bucket, key, str(archive))
    code_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(code_dir, filter="data")


class UnsupportedFormatError(Exception):
    """sagemaker-inference's error for a content type the default handlers cannot (de)serialize."""

    def __init__(self, content_type: str):
        super().__init__(
            f"Content type {content_type} is not supported by this framework.\n"
            "            Please implement input_fn to to deserialize the request data or an output_fn to\n"
            "            serialize the response. For more information, see the SageMaker Python SDK README."
        )


# -- default handlers: the PyTorch serving container's DefaultPytorchInferenceHandler --------------
def default_model_fn(model_dir: str, context=None):
    """TorchScript `model.pt`, else the one `.pt`/`.pth` file of the model dir."""
    import torch

    path = Path(model_dir) / "model.pt"
    if not path.is_file():
        files = [f for f in os.listdir(model_dir) if Path(model_dir, f).is_file() and Path(f).suffix in (".pt", ".pth")]
        if len(files) != 1:
            raise ValueError(f"Exactly one .pth or .pt file is required for PyTorch models: {files}")
        path = Path(model_dir) / files[0]
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as exc:
        raise RuntimeError(f"Failed to load {path}. Please ensure model is saved using torchscript.") from exc


def default_input_fn(input_data, content_type, context=None):
    """`decoder.decode` (JSON, CSV, NPY) into a float tensor."""
    import io

    import numpy as np
    import torch

    if content_type == JSON:
        array = np.array(json.loads(input_data))
    elif content_type == CSV:
        array = np.genfromtxt(io.StringIO(input_data), delimiter=",")
    elif content_type == NPY:
        array = np.load(io.BytesIO(input_data), allow_pickle=True)
    else:
        raise UnsupportedFormatError(content_type)
    return torch.FloatTensor(array) if content_type in UTF8_TYPES else torch.from_numpy(array)


def default_predict_fn(data, model, context=None):
    """`model.eval()` and `model(data)` without gradients."""
    import torch

    with torch.no_grad():
        model.eval()
        return model(data)


def default_output_fn(prediction, accept, context=None):
    """The first type of `accept` the toolkit's encoder knows (JSON, CSV, NPY)."""
    import io

    import numpy as np

    if hasattr(prediction, "detach"):
        prediction = prediction.detach().cpu().numpy().tolist()
    for ctype in accept.replace(" ", "").split(","):
        if ctype == JSON:
            return json.dumps(prediction, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
        if ctype in (CSV, NPY):
            buf = io.StringIO() if ctype == CSV else io.BytesIO()
            np.savetxt(buf, prediction, delimiter=",", fmt="%s") if ctype == CSV else np.save(buf, prediction)
            return buf.getvalue().encode("utf-8") if ctype == CSV else buf.getvalue()
    raise UnsupportedFormatError(accept)


class Context:
    """What the toolkit passes as `context` to handlers that take one (the model server's context)."""

    def __init__(self, model_dir: Path):
        self.system_properties = {"model_dir": str(model_dir), "gpu_id": None}
        self.model_name = "model"


def run_handler(func, *args, context=None):
    """`Transformer._run_handler_function`: pass `context` only to a handler with one more parameter."""
    count = len(inspect.signature(func).parameters)
    if count == len(args):
        return func(*args)
    if count == len(args) + 1:
        return func(*args, context)
    raise TypeError(f"{func.__name__} takes {count} arguments but {len(args)} were given.")


class Handlers:
    """The serving functions of one model, looked up and called as sagemaker-inference's Transformer does."""

    def __init__(self, model_dir: Path, program: str):
        code_dir = model_dir / "code"
        sys.path.insert(0, str(code_dir))
        module_name = program[:-3] if program.endswith(".py") else program
        module = importlib.import_module(module_name) if importlib.util.find_spec(module_name) else None
        found = {n: getattr(module, n, None) for n in ("model_fn", "transform_fn", "input_fn", "predict_fn", "output_fn")}
        if found["transform_fn"] and (found["input_fn"] or found["predict_fn"] or found["output_fn"]):
            raise ValueError(
                "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, and/or "
                "output_fn implementation"
            )
        self.transform_fn = found["transform_fn"] or self._default_transform_fn
        self.input_fn = found["input_fn"] or default_input_fn
        self.predict_fn = found["predict_fn"] or default_predict_fn
        self.output_fn = found["output_fn"] or default_output_fn
        self.context = Context(model_dir)
        self.model = run_handler(found["model_fn"] or default_model_fn, str(model_dir), context=self.context)
        self.default_accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or JSON
        self._lock = threading.Lock()

    def _default_transform_fn(self, model, input_data, content_type, accept, context=None):
        data = run_handler(self.input_fn, input_data, content_type, context=self.context)
        prediction = run_handler(self.predict_fn, data, model, context=self.context)
        return run_handler(self.output_fn, prediction, accept, context=self.context)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes, str]:
        """`Transformer.transform` for one request; returns (body, content type)."""
        if not accept or accept == "*/*":
            accept = self.default_accept
        data = body.decode("utf-8") if content_type in UTF8_TYPES else body
        with self._lock:
            result = run_handler(self.transform_fn, self.model, data, content_type, accept, context=self.context)
        if isinstance(result, tuple):
            result, accept = result[0], result[1]
        return _response_bytes(result), accept


def _response_bytes(result) -> bytes:
    """The model server's body for a handler's return value: bytes as is, str as UTF-8, else JSON."""
    if isinstance(result, bytes | bytearray):
        return bytes(result)
    if isinstance(result, str):
        return result.encode("utf-8")
    return json.dumps(result).encode("utf-8")


def error_reply(exc: BaseException) -> tuple[int, bytes]:
    """`Transformer.handle_error`: the exception's status (500 unless it carries one), message and trace."""
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "message", None)
    if not (isinstance(status, int) and isinstance(message, str)):  # not a BaseInferenceToolkitError
        status, message = 500, str(exc) or "Invalid Request"
    return status, f"{message}\n{traceback.format_exc()}".encode()


def _last_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def make_server(handlers: Handlers) -> ThreadingHTTPServer:
    """An HTTP server answering SageMaker's container API on 127.0.0.1 (port chosen by the OS)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # noqa: D102 - quiet access log
            pass

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 - http.server API
            if self.path == "/ping":
                self._reply(200, b"\n", "text/plain")
            else:
                self._reply(404, b"not found", "text/plain")

        def do_POST(self):  # noqa: N802 - http.server API
            if self.path != "/invocations":
                self._reply(404, b"not found", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            try:
                out, ctype = handlers.invoke(body, self.headers.get("Content-Type"), self.headers.get("Accept"))
            except Exception as exc:  # noqa: BLE001 - as the toolkit: the error's status, message and trace
                traceback.print_exc()
                status, text = error_reply(exc)
                self._reply(status, text, "text/plain; charset=utf-8")
                return
            self._reply(200, out, ctype)

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def _exit_with_parent() -> None:
    """Exit when the emulator that started us is gone (so no server outlives a killed emulator)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """Load the model, then serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-data-url", required=True)
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--port-file", required=True, type=Path)
    parser.add_argument("--failure-file", required=True, type=Path)
    args = parser.parse_args(argv)
    _exit_with_parent()
    try:
        _download(args.model_data_url, args.model_dir)
        submit = os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
        if submit.startswith("s3://"):
            _overlay_submit_dir(submit, args.model_dir / "code")
        program = Path(os.environ.get("SAGEMAKER_PROGRAM") or "inference.py").name
        handlers = Handlers(args.model_dir, program)
    except LoadError as exc:
        traceback.print_exc()
        args.failure_file.write_text(str(exc))
        return 1
    except Exception as exc:  # noqa: BLE001 - the toolkit's load error (import, handler lookup, model_fn)
        traceback.print_exc()
        args.failure_file.write_text(_last_line(exc))
        return 1
    server = make_server(handlers)
    tmp = args.port_file.with_suffix(".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.replace(args.port_file)
    print(f"model server for {args.model_data_url} listening on port {server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
