"""The manifests and the MNIST assets dlspec-ray ships, so that a pip-installed tool runs its
default task from any folder.

In the repository these are links to ``manifests/`` and ``assets/mnist/``; a built wheel
holds copies. A ref that no manifest folder holds resolves to these
(``spec.catalog.SHIPPED_MANIFESTS``), so a user's own manifest of the same ref comes
first; they are trusted as the project's own.
"""

from __future__ import annotations

__all__ = ["EXAMPLES", "EXAMPLE_ASSETS", "EXAMPLE_MANIFESTS"]

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
EXAMPLE_MANIFESTS = EXAMPLES / "manifests"
EXAMPLE_ASSETS = EXAMPLES / "assets"
