"""One static HTML page of results (`make demo`, `motionsynth report`): a section per task, each with animations,
plots, numbers tables and downloadable files, all referenced by paths relative to the page's folder.

The page holds no computation: callers render animations (`viz.render.render`) and plots (`viz.plots`) into the
output folder, then describe them with `Section` and `Table`; `write_page` checks that every referenced file is
there and writes ``index.html`` atomically. Every piece of text is HTML-escaped, every path URL-quoted.

`staged` gives the whole output folder the project's no-half-written-output rule: everything is built in a temporary
folder beside the target and moved into it only once complete (``index.html`` last).
"""

from __future__ import annotations

import contextlib
import html
import math
import numbers
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import quote

from ..errors import MotionsynthError
from ..io.atomic import atomic_open, temp_folder

PAGE = "index.html"
IMAGE_SUFFIXES = (".gif", ".png", ".svg", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4",)

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1.5em; color: #1e2446; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 2px solid #dde2ec; padding-bottom: 0.2em; }
p.note { margin: 0.3em 0; } p.warn { color: #9a3412; }
figure { display: inline-block; margin: 0.6em 1.2em 0.6em 0; vertical-align: top; }
figure img, figure video { max-width: 100%; border: 1px solid #dde2ec; }
figcaption { font-size: 0.9em; color: #4b5375; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
th, td { border: 1px solid #dde2ec; padding: 0.25em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f5fa; }
td.worse { background: #fde2e1; color: #8a1c12; font-weight: 600; }
table.text td, table.text th { text-align: left; max-width: 46em; }
ul.files { font-size: 0.9em; }
footer { margin-top: 3em; font-size: 0.85em; color: #4b5375; }
code { background: #f3f5fa; padding: 0 0.2em; }
"""


@dataclass
class Table:
    """A numbers table: ``rows`` of cells (numbers are formatted by `fmt`, None shows as –); ``marked``: the (row,
    column) indices of cells shown as worse (red); ``note``: a paragraph under it; ``text``: cells of words, aligned
    left."""

    columns: list[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""
    note: str = ""
    marked: set = field(default_factory=set)
    text: bool = False


@dataclass
class Media:
    """An image (``.gif``/``.png``/``.svg``), a video (``.mp4``) or any other file (a download link)."""

    path: Path
    caption: str = ""


@dataclass
class Section:
    """One task's part of the page."""

    title: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    files: list[Media] = field(default_factory=list)
    anchor: str = ""


def fmt(value: Any) -> str:
    """A cell's text: None and NaN → '–'; integers as they are; other numbers with 3 decimals below 10, 2 below
    1000, none above (tiny ones in scientific notation); anything else ``str``."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            return "–"
        if x != 0 and abs(x) < 1e-3:
            return f"{x:.2e}"
        return f"{x:.{3 if abs(x) < 10 else 2 if abs(x) < 1000 else 0}f}"
    return str(value)


def _href(path: Path, base: Path) -> str:
    rel = os.path.relpath(Path(path).resolve(), Path(base).resolve())
    if rel.startswith(".."):
        raise MotionsynthError(f"{path}: the page can only show files inside its folder {base}")
    return quote(Path(rel).as_posix())


def table_html(table: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(str(c))}</th>" for c in table.columns)
    worse = ' class="worse"'
    body = "".join("<tr>" + "".join(f"<td{worse if (i, j) in table.marked else ''}>{e(fmt(v))}</td>"
                                    for j, v in enumerate(row)) + "</tr>\n" for i, row in enumerate(table.rows))
    caption = f"<caption>{e(table.caption)}</caption>" if table.caption else ""
    note = f'<p class="note">{e(table.note)}</p>' if table.note else ""
    kind = ' class="text"' if table.text else ""
    return f"<table{kind}>{caption}<thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>{note}\n"


def media_html(media: Media, base: Path) -> str:
    e, src = html.escape, _href(media.path, base)
    suffix = Path(media.path).suffix.lower()
    caption = f"<figcaption>{e(media.caption)}</figcaption>" if media.caption else ""
    if suffix in IMAGE_SUFFIXES:
        body = f'<img src="{src}" alt="{e(media.caption or Path(media.path).name)}">'
    elif suffix in VIDEO_SUFFIXES:
        body = f'<video src="{src}" controls loop muted autoplay playsinline></video>'
    else:
        return f'<a href="{src}">{e(media.caption or Path(media.path).name)}</a>'
    return f"<figure>{body}{caption}</figure>\n"


def section_html(section: Section, base: Path) -> str:
    e = html.escape
    anchor = f' id="{e(section.anchor)}"' if section.anchor else ""
    parts = [f"<section{anchor}><h2>{e(section.title)}</h2>\n"]
    parts += [f'<p class="warn">{e(w)}</p>\n' for w in section.warnings]
    parts += [f'<p class="note">{e(n)}</p>\n' for n in section.notes]
    if section.media:
        parts.append("<div>" + "".join(media_html(m, base) for m in section.media) + "</div>\n")
    parts += [table_html(t) for t in section.tables]
    if section.files:
        parts.append('<ul class="files">' + "".join(f"<li>{media_html(f, base)}</li>" for f in section.files)
                     + "</ul>\n")
    parts.append("</section>\n")
    return "".join(parts)


def page_html(title: str, sections: list[Section], base: Path, intro: Sequence[str] = (),
              tables: Sequence[Table] = (), footer: Sequence[str] = ()) -> str:
    """The whole page: title, intro paragraphs and tables, a table of contents, the sections, a footer."""
    e = html.escape
    toc = "".join(f'<li><a href="#{e(s.anchor)}">{e(s.title)}</a></li>' for s in sections if s.anchor)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{e(title)}</title><style>{STYLE}</style></head><body>\n<h1>{e(title)}</h1>\n"
            + "".join(f'<p class="note">{e(p)}</p>\n' for p in intro)
            + "".join(table_html(t) for t in tables)
            + (f"<ul>{toc}</ul>\n" if toc else "")
            + "".join(section_html(s, base) for s in sections)
            + ("<footer>" + "".join(f"<p>{e(p)}</p>" for p in footer) + "</footer>\n" if footer else "")
            + "</body></html>\n")


def referenced(sections: list[Section]) -> list[Path]:
    """Every file the sections point to."""
    return [m.path for s in sections for m in (*s.media, *s.files)]


def write_page(folder: str | os.PathLike, title: str, sections: list[Section], intro: Sequence[str] = (),
               tables: Sequence[Table] = (), footer: Sequence[str] = ()) -> Path:
    """Write ``folder/index.html`` atomically; every file a section references must exist inside ``folder``."""
    folder = Path(folder)
    missing = [str(p) for p in referenced(sections) if not Path(p).is_file()]
    if missing:
        raise MotionsynthError(f"the report references missing files: {', '.join(missing)}")
    text = page_html(title, sections, folder, intro, tables, footer)
    with atomic_open(folder / PAGE, encoding="utf-8") as f:
        f.write(text)
    return folder / PAGE


@contextlib.contextmanager
def staged(out: str | os.PathLike) -> Iterator[Path]:
    """Build an output folder without ever leaving it half-written: yields a temporary folder beside ``out``; on
    success its files are moved into ``out`` (created if needed; files of an older report of the same names are
    replaced, ``index.html`` last), on error it is removed and ``out`` is left as it was."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MotionsynthError(f"{out}: exists and is not a folder; the report is a folder (index.html + files)")
    tmp = temp_folder(out)
    try:
        yield tmp
        files = sorted((p for p in tmp.rglob("*") if p.is_file()), key=lambda p: (p.name == PAGE, str(p)))
        for p in files:
            target = out / p.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["Table", "Media", "Section", "fmt", "table_html", "media_html", "section_html", "page_html",
           "write_page", "staged", "referenced", "PAGE"]
