"""Shared test setup: headless pygame, one torch thread (tests share few cores)."""

import os
import sys

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # read by torch when it is first imported


def pytest_runtest_setup(item):
    """Pin torch to one thread in every test that has imported it (importing torch here
    would cost every test run its start-up time)."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
