"""Make this folder's helpers (``fusion_configs``, ``fusion_reference``) importable by its tests."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
