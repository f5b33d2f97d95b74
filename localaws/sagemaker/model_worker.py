"""Model server subprocess: the SageMaker PyTorch serving contract over SageMaker's container HTTP API.

Run as `python model_worker.py --model-data-url s3://…/model.tar.gz --model-dir DIR --port-file F
--failure-file F`. It downloads and untars the model (boto3 → the emulator via AWS_ENDPOINT_URL), puts
`code/` on sys.path, imports `code/<SAGEMAKER_PROGRAM or inference.py>`, calls `model_fn(model_dir)`,
then serves `GET /ping` and `POST /invocations` (→ `input_fn`, `predict_fn`, `output_fn`, or a single
`transform_fn`) on 127.0.0.1 at a free port that it writes to the port file. If loading fails the
reason goes to the failure file and the process exits 1. Handler errors answer HTTP 500 with
`<ExceptionType>: <message>` as the body. Uses only the standard library and boto3.
"""

from __future__ import annotations

import argparse
import importlib.util
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

JSON_TYPES = ("application/json",)
JSONLINES_TYPES = ("application/jsonlines", "application/x-jsonlines", "application/json-lines")


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


# -- default handlers (used when inference.py leaves one out) -----------------------------------
def default_model_fn(model_dir: str):
    """Load a TorchScript `model.pt`/`model.pth`, like the PyTorch serving container does."""
    for name in ("model.pt", "model.pth"):
        path = Path(model_dir) / name
        if path.is_file():
            import torch

            return torch.jit.load(str(path), map_location="cpu").eval()
    raise NotImplementedError(
        "code/inference.py defines no model_fn and the model dir has no TorchScript model.pt/model.pth"
    )


def default_input_fn(body: bytes, content_type: str):
    """JSON / JSON Lines → Python objects, text → str, anything else → the raw bytes."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in JSON_TYPES:
        return json.loads(body)
    if ctype in JSONLINES_TYPES:
        return [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
    if ctype.startswith("text/"):
        return body.decode("utf-8")
    return body


def default_predict_fn(data, model):
    """Call the model on the decoded input."""
    if not callable(model):
        raise TypeError("code/inference.py defines no predict_fn and the loaded model is not callable")
    return model(data)


def default_output_fn(prediction, accept: str):
    """bytes/str pass through; JSON Lines for a list when asked; JSON otherwise."""
    if isinstance(prediction, bytes | bytearray):
        return bytes(prediction)
    if isinstance(prediction, str):
        return prediction.encode("utf-8")
    if hasattr(prediction, "tolist"):
        prediction = prediction.tolist()
    ctype = (accept or "").split(";")[0].strip().lower()
    if ctype in JSONLINES_TYPES and isinstance(prediction, list):
        return "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in prediction).encode("utf-8")
    return json.dumps(prediction, ensure_ascii=False).encode("utf-8")


class Handlers:
    """The serving functions of one model, with defaults for the missing ones."""

    def __init__(self, model_dir: Path, program: str):
        code_dir = model_dir / "code"
        path = code_dir / program
        if not path.is_file():
            raise LoadError(f"model.tar.gz has no code/{program}")
        sys.path.insert(0, str(code_dir))
        spec = importlib.util.spec_from_file_location(Path(program).stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise LoadError(f"importing code/{program} failed: {_last_line(exc)}") from exc
        self.transform_fn = getattr(module, "transform_fn", None)
        self.input_fn = getattr(module, "input_fn", default_input_fn)
        self.predict_fn = getattr(module, "predict_fn", default_predict_fn)
        self.output_fn = getattr(module, "output_fn", default_output_fn)
        model_fn = getattr(module, "model_fn", default_model_fn)
        try:
            self.model = model_fn(str(model_dir))
        except Exception as exc:
            raise LoadError(f"model_fn failed: {_last_line(exc)}") from exc
        self._lock = threading.Lock()

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """Run the handler chain on one request; returns (body, content type)."""
        accept = accept if accept and accept != "*/*" else "application/json"
        with self._lock:
            if self.transform_fn is not None:
                result = self.transform_fn(self.model, body, content_type, accept)
            else:
                data = self.input_fn(body, content_type)
                prediction = self.predict_fn(data, self.model)
                result = self.output_fn(prediction, accept)
        if isinstance(result, tuple) and len(result) == 2:
            result, accept = result
        if isinstance(result, str):
            result = result.encode("utf-8")
        return bytes(result), accept


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
                out, ctype = handlers.invoke(
                    body, self.headers.get("Content-Type", "application/octet-stream"), self.headers.get("Accept", "")
                )
            except Exception as exc:  # noqa: BLE001 - every handler error becomes a 500 for the caller
                traceback.print_exc()
                self._reply(500, _last_line(exc).encode("utf-8"), "text/plain; charset=utf-8")
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
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        args.failure_file.write_text(f"model server failed to start: {_last_line(exc)}")
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
