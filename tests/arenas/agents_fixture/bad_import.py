"""An agent file that fails while it is imported (for the loader's error message)."""

raise RuntimeError("this file cannot be imported")
