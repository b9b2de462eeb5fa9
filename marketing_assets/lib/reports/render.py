"""Pages to HTML: the Jinja2 templates and the stylesheet of ``marketing_assets/templates``, loaded as package data."""

from __future__ import annotations

import functools
from importlib import resources

import jinja2
from markupsafe import Markup

from marketing_assets.lib.reports import charts
from marketing_assets.lib.reports.blocks import Chart, Page
from marketing_assets.lib.reports.formatting import slug

TEMPLATES = "templates"
STYLESHEET = "report.css"


def template_files() -> resources.abc.Traversable:
    """The folder of templates and stylesheet inside the installed package."""
    return resources.files("marketing_assets").joinpath(TEMPLATES)


@functools.cache
def stylesheet() -> str:
    return template_files().joinpath(STYLESHEET).read_text(encoding="utf-8")


def _draw(chart: Chart) -> tuple[Markup, Markup]:
    wide, narrow = charts.draw(chart.kind, chart.args, chart.options, chart.narrow)
    return Markup(wide), Markup(narrow)  # noqa: S704 - SVG built by lib.svg, which escapes every label


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("marketing_assets", TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["slug"] = slug
    env.globals["draw"] = _draw
    return env


def render_page(page: Page) -> str:
    return environment().get_template(page.template).render(page=page, css=Markup(stylesheet()))  # noqa: S704


def render_blocks(blocks: list) -> str:
    """HTML of a few blocks (a section's body), for tests and previews."""
    macros = environment().get_template("blocks.html.j2").module
    return "".join(str(macros.block(b)) for b in blocks)
