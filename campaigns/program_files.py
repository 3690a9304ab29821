"""The campaigns package's program files (``campaigns/*.yaml``) and the checks across them."""

from __future__ import annotations
