"""Tables out as CSV (stdlib) and Excel (openpyxl): the evaluation figures of gridmgmt.kpi, rendered, never
recomputed. Each writer takes rows as the API serialises them (dicts) and a list of columns; the numbers in
the file are the JSON's numbers (rates stay fractions, shown as percentages by the cell format in Excel).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "int"  # int | rate | float | text


# The evaluation table's columns, in the order a leader reads them (the page, CSV and Excel share it).
KPI_COLUMNS: tuple[Column, ...] = (
    Column("key", _("编号"), "text"),
    Column("name", _("名称"), "text"),
    Column("received", _("受理数")),
    Column("filed", _("立案数")),
    Column("dispatched", _("派遣数")),
    Column("sent_back", _("退单数")),
    Column("handled", _("处置反馈数")),
    Column("check_failed", _("返工数")),
    Column("closed", _("结案数")),
    Column("closed_on_time", _("按期结案数")),
    Column("due", _("应结案数")),
    Column("due_closed", _("应结已结数")),
    Column("rated", _("评价数")),
    Column("closure_rate", _("结案率"), "rate"),
    Column("on_time_closure_rate", _("按期结案率"), "rate"),
    Column("rework_rate", _("返工率"), "rate"),
    Column("send_back_rate", _("退单率"), "rate"),
    Column("satisfied_rate", _("满意率"), "rate"),
    Column("satisfaction_mean", _("满意度均分"), "float"),
    Column("avg_handling_hours", _("平均处置时长(小时)"), "float"),
)


def _cell(value):
    return "" if value is None else value


def table_csv(*, rows: Iterable[dict], columns: Sequence[Column] = KPI_COLUMNS) -> bytes:
    """UTF-8 with a BOM (Excel on Windows opens it as UTF-8), one header line of the columns' labels."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([str(c.label) for c in columns])
    for row in rows:
        writer.writerow([_cell(row.get(c.key)) for c in columns])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


_SHEET_BAD = re.compile(r"[\\/*?:\[\]]")
_FORMATS = {"rate": "0.0%", "float": "0.00", "int": "0"}


def workbook_write(
    *, sheets: Sequence[tuple[str, str, Sequence[dict]]], columns: Sequence[Column] = KPI_COLUMNS
) -> bytes:
    """An .xlsx of one sheet per (sheet title, caption line, rows): the caption in A1, headers in row 2."""
    wb = Workbook()
    wb.remove(wb.active)
    for title, caption, rows in sheets:
        ws = wb.create_sheet(title=_SHEET_BAD.sub("、", title)[:31])  # Excel's rules for sheet names
        ws.append([caption])
        ws.append([str(c.label) for c in columns])
        for cell in ws[2]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append([row.get(c.key) for c in columns])
        for i, c in enumerate(columns, start=1):
            letter = get_column_letter(i)
            ws.column_dimensions[letter].width = 24 if c.key == "name" else 12
            if c.kind in _FORMATS:
                for (cell,) in ws.iter_rows(min_row=3, min_col=i, max_col=i):
                    cell.number_format = _FORMATS[c.kind]
        ws.freeze_panes = "C3"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
