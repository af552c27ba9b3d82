"""Leads in bulk: the CSV file (:mod:`.csvfile`), lead rows (:mod:`.csvrows`), the import
(:mod:`.importer`; its bulk upsert is :mod:`dripengine.storage.leads`), opting out (:mod:`.optout`),
"did you mean" (:mod:`.nearest`).

The names below are imported on first use (PEP 562): ``drip recycle EMAIL`` needs
:mod:`.nearest` only, not the CSV reader and the import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dripengine.leads.csvrows import LeadRow, RowError
    from dripengine.leads.importer import ImportReport, import_leads_file, import_leads_rows

__all__ = ["ImportReport", "LeadRow", "RowError", "import_leads_file", "import_leads_rows"]

_WHERE = {
    "LeadRow": "dripengine.leads.csvrows",
    "RowError": "dripengine.leads.csvrows",
    "ImportReport": "dripengine.leads.importer",
    "import_leads_file": "dripengine.leads.importer",
    "import_leads_rows": "dripengine.leads.importer",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
