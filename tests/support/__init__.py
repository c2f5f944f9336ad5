"""Test support, kept out of the installed package: OpenAI-compatible test servers with faults (`testing_servers`),
planted factor data (`planted`), and the headless-Chromium report checks (`browser`). Imported by tests, benchmarks
and scripts/psych_reference.py with the repo root on sys.path (pytest: `pythonpath` in pyproject.toml)."""
