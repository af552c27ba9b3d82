"""Leads in bulk: CSV rows (:mod:`.csvrows`), the bulk upsert (:mod:`.store`), the import (:mod:`.importer`)."""

from __future__ import annotations

from dripengine.leads.csvrows import LeadRow, RowError
from dripengine.leads.importer import ImportReport, import_leads_file, import_leads_rows

__all__ = ["ImportReport", "LeadRow", "RowError", "import_leads_file", "import_leads_rows"]
