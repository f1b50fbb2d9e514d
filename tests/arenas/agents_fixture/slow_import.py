"""An agent file that hangs while it is imported (for the worker's start timeout)."""

import time

time.sleep(3600)


class Never:
    name = "never"
