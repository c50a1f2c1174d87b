"""Model tests: ``detector_inputs.py`` (tiny configs and frames made in code) goes on ``sys.path``."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
