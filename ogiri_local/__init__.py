"""Local mode: start the emulator and a loopback image server, wire Airflow to them (dev/test only)."""
