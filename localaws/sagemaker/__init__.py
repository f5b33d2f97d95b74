"""SageMaker extensions of the emulator: jobs and endpoints that really run our code."""


def install() -> None:
    """Install the SageMaker backend extensions into moto (called once by the server)."""
