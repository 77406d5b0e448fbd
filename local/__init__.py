"""The local stack and its tools. Importing it puts the shared layer's package on the path,
as Lambda does with a layer's `python/` folder."""

import sys
from pathlib import Path

_LAYER = str(Path(__file__).resolve().parent.parent / "layers" / "billbridge")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
