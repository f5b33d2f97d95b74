"""Request pieces shared by the SageMaker Processing jobs that run ``include/training`` scripts
(``evaluate.py`` in ``ogiri_train``, ``monitor.py`` in ``ogiri_monitor``): the same image, the same
code bundle (:mod:`ogiri.source`) staged as an input, the same entry point."""

from __future__ import annotations

from typing import Any

PROCESSING_ROOT = "/opt/ml/processing"
#: Where the code bundle's unpacked files are staged in the container.
CODE_DIR = f"{PROCESSING_ROOT}/input/code"


def processing_input(name: str, uri: str, local: str) -> dict[str, Any]:
    """A ``ProcessingInputs`` entry copying the S3 prefix (or object) ``uri`` to ``local`` before the job."""
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def code_input(source: dict[str, Any]) -> dict[str, Any]:
    """The code bundle's unpacked files (``SourceBundle.files_uri``) as the ``code`` input."""
    return processing_input("code", source["files_uri"], CODE_DIR)


def processing_output(name: str, uri: str, local: str) -> dict[str, Any]:
    """A ``ProcessingOutputConfig`` output uploading ``local`` to ``uri`` at the end of the job."""
    return {"OutputName": name, "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"}}


def script_app(image_uri: str, script: str, arguments: list[str]) -> dict[str, Any]:
    """``AppSpecification`` running ``<code>/<script> <arguments>`` in ``image_uri``.

    Unlike training, a processing job does not install the source dir's requirements (pycocoevalcap
    is not in the PyTorch DLC): the entry point installs them, then runs the script.
    """
    return {
        "ImageUri": image_uri,
        "ContainerEntrypoint": [
            "bash",
            "-c",
            f"python3 -m pip install --quiet --disable-pip-version-check -r {CODE_DIR}/"
            f'requirements.txt && exec python3 {CODE_DIR}/{script} "$@"',
            script.removesuffix(".py"),
        ],
        "ContainerArguments": list(arguments),
    }


def cluster(instance_type: str, volume_gb: int = 30) -> dict[str, Any]:
    """``ProcessingResources`` of one instance."""
    return {"ClusterConfig": {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": volume_gb}}
