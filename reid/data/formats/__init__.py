"""On-disk dataset formats, one module per format.

Importing this package stays cheap and side-effect free (shared helpers import
from it); the registry imports the modules named below on first use, and each
registers its loader with ``@register_dataset``.
"""
from __future__ import annotations

BUILTIN_FORMAT_MODULES = (
    "reid.data.formats.market1501",
    "reid.data.formats.dukemtmc",
    "reid.data.formats.occ_duke",
    "reid.data.formats.msmt17",
    "reid.data.formats.veri776",
    "reid.data.formats.vehicleid",
    "reid.data.formats.synthetic",
    "reid.data.formats.folder",
)
