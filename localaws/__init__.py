"""localaws: a local AWS emulator for Ogiri MLOps (dev/test only, never imported by DAGs).

moto 5.2.5's server, extended: Rekognition labels computed from the image, current SageMaker
instance types, SageMaker jobs/endpoints that run our code (``localaws.sagemaker``), fault
injection and ``/_localaws/*`` admin routes. Start it with
``python -m localaws serve --host 127.0.0.1 --port N [--home DIR] [--enforce-iam] [--tls]``.
"""

ENDPOINT_ENV = "LOCALAWS_ENDPOINT_URL"
HOME_ENV = "LOCALAWS_HOME"
FAULTS_ENV = "LOCALAWS_FAULTS"
IAM_ENV = "LOCALAWS_ENFORCE_IAM"
TLS_ENV = "LOCALAWS_TLS"
CA_BUNDLE_ENV = "LOCALAWS_CA_BUNDLE"
