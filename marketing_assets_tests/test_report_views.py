"""The report layer presents numbers, it never computes a KPI; its templates and stylesheet ship as package data.

The rule, checked with ``ast`` over every view module of :mod:`marketing_assets.lib.reports` and with Jinja's
parser over the templates:

* A **KPI reference** is a string constant, name or attribute that names a KPI of the dictionary, a published
  extract column carrying one (``extracts.column_kpi``), or contains one of the KPI words of ``KPI_WORDS`` as an
  ``_``-separated token (``revenue``, ``spend``, ``roas``, ``ltv``, ``cac``, …: ``paid_revenue``, ``roas``).
* An expression **holds KPI values** when it is a KPI-named variable, a parameter annotated ``pd.Series``, a
  variable assigned from such an expression in the same function (also through ``for`` targets and tuple
  unpacking), a subscript/attribute/``.get(...)`` with a KPI reference (``frame["ad_spend"]``, ``rec.get("cac")``),
  a method call on an expression holding KPI values, or ``float``/``abs``/``pd.to_numeric``/``numeric``/``col``/
  ``kpi_series``/``dimension_frame``/``additive_total`` of one.
* **KPI arithmetic** is then: ``+ - * / // % **`` (also augmented) with an operand holding KPI values; a reducing
  or arithmetic method (``.sum() .mean() .div() .mul() .sub() .add() .diff() .pct_change() .cumsum()`` …) on one;
  ``sum()`` of one; ``pivot_table(values=<KPI>, aggfunc="sum"|"mean")``; any arithmetic stored under a KPI name
  (``roas = a / b``, ``frame["ltv"] = x * y``). Not arithmetic: comparisons, ``min``/``max``, sorting, string and
  list concatenation (an operand that is a string, f-string, list or tuple literal), date offsets (an operand that
  is a ``pd.Timedelta``/``pd.DateOffset``/``pd.offsets`` call).
* :func:`~marketing_assets.lib.reports.common.additive_total` is the one place a KPI is summed: it refuses a KPI
  whose dictionary formula does not add up, so summing e.g. revenue over 12 months is allowed, a ratio is not.
* Templates contain no arithmetic operator at all.

``KNOWN_EXCEPTIONS`` lists the functions that still compute a figure the extracts do not publish; each names the
missing extract figure, and the test fails once an exception no longer computes anything (remove it then).
"""

import ast
import fnmatch
import tomllib
from importlib import resources
from pathlib import Path

import jinja2
import pytest

import marketing_assets
from marketing_assets.extracts import EXTRACT_COLUMNS, column_kpi
from marketing_assets.lib.kpis import load_kpi_dictionary
from marketing_assets.lib.reports import cohorts, common, data_quality, executive, marketing_roi, mmm
from marketing_assets.lib.reports.render import environment, stylesheet, template_files

VIEW_MODULES = (common, executive, marketing_roi, cohorts, mmm, data_quality)
KPI_WORDS = frozenset({"revenue", "spend", "roas", "roi", "mroi", "cac", "ltv", "margin", "cogs", "conversion", "pipeline", "growth",
                       "cpl", "cpa", "payback", "turnover", "retention"})
DICTIONARY = load_kpi_dictionary()
KPI_NAMES = frozenset({k.name for k in DICTIONARY} | {c for name, cols in EXTRACT_COLUMNS.items() for c in cols if column_kpi(name, c, DICTIONARY)})
ALLOWED = {("common", "additive_total")}  # sums a KPI only when the dictionary says it adds up (checked at run time)
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}

ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
REDUCERS = frozenset({"sum", "mean", "median", "prod", "cumsum", "cumprod", "diff", "pct_change", "div", "truediv", "rdiv", "rtruediv", "mul",
                      "multiply", "rmul", "sub", "subtract", "rsub", "add", "radd", "std", "var", "agg", "aggregate"})
VALUE_FUNCS = frozenset({"float", "abs", "to_numeric", "numeric", "col", "kpi_series", "dimension_frame", "additive_total", "round"})
TEXT_METHODS = frozenset({"label", "link", "unit", "use", "status", "higher_is_better", "change_kpi", "is_additive", "format", "startswith", "replace"})
DATE_CALLS = frozenset({"Timedelta", "DateOffset", "MonthEnd", "MonthBegin"})


def kpi_reference(name: str) -> bool:
    return name in KPI_NAMES or bool(KPI_WORDS & set(name.lower().split("_")))


def _is_kpi_constant(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return kpi_reference(node.value)
    return isinstance(node, (ast.List, ast.Tuple)) and any(_is_kpi_constant(e) for e in node.elts)


def _call_name(node: ast.Call) -> str:
    return node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id if isinstance(node.func, ast.Name) else ""


def _target_names(target: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


class FunctionChecker:
    """KPI arithmetic in one function (nested functions and lambdas included: they share its variables)."""

    def __init__(self, fn: ast.FunctionDef):
        self.fn = fn
        self.tainted = {a.arg for a in [*fn.args.args, *fn.args.kwonlyargs] if a.annotation is not None and "Series" in ast.unparse(a.annotation)}
        self.violations: list[str] = []

    def holds_kpi(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.tainted or kpi_reference(node.id)
        if isinstance(node, ast.Subscript):
            return _is_kpi_constant(node.slice) or self.holds_kpi(node.value)
        if isinstance(node, ast.Attribute):
            if node.attr.isupper() or (isinstance(node.value, ast.Name) and node.value.id == "T"):
                return False  # copy and constants (text.ROI_CHART_HOW), not figures
            return kpi_reference(node.attr) or self.holds_kpi(node.value)
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name in TEXT_METHODS:
                return False
            args = [*node.args, *(k.value for k in node.keywords)]
            if isinstance(node.func, ast.Attribute) and self.holds_kpi(node.func.value) and not (isinstance(node.func.value, ast.Name) and node.func.value.id in ("pd", "np")):
                return True
            if isinstance(node.func, ast.Attribute) and any(_is_kpi_constant(a) for a in args):
                return True  # frame.get("cac"), frame.pivot_table(values="ad_spend")
            return name in VALUE_FUNCS and any(self.holds_kpi(a) or _is_kpi_constant(a) for a in args)
        if isinstance(node, ast.BinOp):
            return self.holds_kpi(node.left) or self.holds_kpi(node.right)
        if isinstance(node, ast.UnaryOp):
            return self.holds_kpi(node.operand)
        if isinstance(node, ast.IfExp):
            return self.holds_kpi(node.body) or self.holds_kpi(node.orelse)
        return False

    @staticmethod
    def _not_numeric(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return True
        if isinstance(node, (ast.JoinedStr, ast.List, ast.Tuple, ast.ListComp)):
            return True
        return isinstance(node, ast.Call) and _call_name(node) in DATE_CALLS

    def _report(self, node: ast.AST, what: str) -> None:
        self.violations.append(f"line {node.lineno}: {what}: {ast.unparse(node)[:120]}")

    def _arithmetic(self, node: ast.AST) -> bool:
        return any(isinstance(n, ast.BinOp) and isinstance(n.op, ARITHMETIC) and not (self._not_numeric(n.left) or self._not_numeric(n.right)) for n in ast.walk(node))

    def run(self) -> list[str]:
        # two passes: variables tainted late in a loop body taint earlier statements of the next iteration
        for _ in range(2):
            self.violations = []
            for node in ast.walk(self.fn):
                self.visit(node)
        return sorted(set(self.violations))

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if self.holds_kpi(node.value):
                for t in targets:
                    self.tainted.update(_target_names(t))
            for t in targets:
                stored_under_kpi = (isinstance(t, ast.Name) and kpi_reference(t.id)) or (isinstance(t, ast.Subscript) and _is_kpi_constant(t.slice))
                if stored_under_kpi and self._arithmetic(node.value):
                    self._report(node, "arithmetic stored under a KPI name")
            if isinstance(node, ast.AugAssign) and isinstance(node.op, ARITHMETIC) and not self._not_numeric(node.value):
                if self.holds_kpi(node.target) or self.holds_kpi(node.value):
                    self._report(node, "augmented arithmetic on KPI values")
        elif isinstance(node, (ast.For, ast.comprehension)) and self.holds_kpi(node.iter):
            self.tainted.update(_target_names(node.target))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ARITHMETIC):
            if not (self._not_numeric(node.left) or self._not_numeric(node.right)) and (self.holds_kpi(node.left) or self.holds_kpi(node.right)):
                self._report(node, "arithmetic on KPI values")
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            if isinstance(node.func, ast.Attribute) and name in REDUCERS and self.holds_kpi(node.func.value):
                self._report(node, f".{name}() on KPI values")
            elif isinstance(node.func, ast.Name) and name == "sum" and any(self.holds_kpi(a) for a in node.args):
                self._report(node, "sum() of KPI values")
            keywords = {k.arg: k.value for k in node.keywords}
            aggfunc = keywords.get("aggfunc")
            if name == "pivot_table" and isinstance(aggfunc, ast.Constant) and aggfunc.value in ("sum", "mean") and _is_kpi_constant(keywords.get("values", ast.Constant(""))):
                self._report(node, "pivot_table adding up KPI values")


def violations(source: str) -> dict[str, list[str]]:
    """{function name: KPI arithmetic found} over the top-level functions of ``source``."""
    tree = ast.parse(source)
    found = {}
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef):
            problems = FunctionChecker(fn).run()
            if problems:
                found[fn.name] = problems
    return found


def _module_violations(module) -> dict[tuple[str, str], list[str]]:
    short = module.__name__.rsplit(".", 1)[-1]
    return {(short, fn): v for fn, v in violations(Path(module.__file__).read_text(encoding="utf-8")).items()}


def test_view_modules_compute_no_kpi():
    found = {}
    for module in VIEW_MODULES:
        found.update(_module_violations(module))
    unexpected = {k: v for k, v in found.items() if k not in KNOWN_EXCEPTIONS and k not in ALLOWED}
    assert not unexpected, "\n".join(f"{m}.{fn}: {line}" for (m, fn), lines in unexpected.items() for line in lines)
    stale = [k for k in KNOWN_EXCEPTIONS if k not in found]
    assert not stale, f"no KPI arithmetic left in {stale}: remove them from KNOWN_EXCEPTIONS"


PLANTED = '''
def channel_table(frame, lookup):
    revenue = frame["attributed_revenue"]
    spend = frame["ad_spend"]
    roas = revenue / spend
    return roas
'''


@pytest.mark.parametrize(
    "snippet",
    [
        PLANTED,
        "def f(revenue, spend):\n    roas = revenue / spend\n",  # the bare line: names alone say KPI
        "def f(frame):\n    return frame['total_revenue'].sum()\n",
        "def f(frame):\n    x = frame.get('cac')\n    return x * 2\n",
        "def f(frame):\n    return frame.pivot_table(index='channel_group', values='ad_spend', aggfunc='sum')\n",
        "def f(frame):\n    frame['ltv'] = frame['a'] / frame['b']\n",
        "def f(series: pd.Series):\n    return series / series.shift(1)\n",
        "def f(kpis):\n    rev = kpi_series(kpis, 'total_revenue')\n    total = 0\n    for v in rev:\n        total += v\n    return total\n",
    ],
)
def test_planted_kpi_arithmetic_fails(snippet):
    assert violations(snippet), snippet


def test_planted_line_in_a_real_view_module_fails():
    source = Path(marketing_roi.__file__).read_text(encoding="utf-8") + PLANTED
    assert "channel_table" in violations(source)
    line = source.count("\n", 0, source.index("roas = revenue / spend")) + 1
    assert f"line {line}: arithmetic on KPI values: revenue / spend" in violations(source)["channel_table"]


@pytest.mark.parametrize(
    "snippet",
    [
        "def f(frame):\n    return frame[frame['level'] == 'channel'].sort_values('ad_spend', ascending=False).head(8)\n",
        "def f(frame, lookup):\n    return additive_total(frame, 'total_revenue', lookup, column='value')\n",
        "def f(frame):\n    return frame.pivot_table(index='period', columns='channel', values='value', aggfunc='first')\n",
        "def f(month):\n    return month - pd.DateOffset(months=1)\n",
        "def f(lookup, kpi, currency):\n    return lookup.label(kpi) + f' ({currency})'\n",
        "def f(v, prev):\n    return float(v) > float(prev)\n",
        "def f(roas, idx):\n    return [float(roas)] * len(idx)\n",
    ],
)
def test_reshaping_and_formatting_pass(snippet):
    assert not violations(snippet), violations(snippet)


def test_additive_total_refuses_a_ratio():
    import pandas as pd

    from marketing_assets.lib.reports.dictionary import KpiLookup

    lookup = KpiLookup(None)  # falls back to the packaged dictionary
    assert lookup.is_additive("total_revenue") and lookup.is_additive("gross_margin") and lookup.is_additive("funnel_contacts")
    assert not lookup.is_additive("blended_roas") and not lookup.is_additive("gross_margin_pct") and not lookup.is_additive("revenue_growth_mom")
    assert common.additive_total(pd.Series([1.0, 2.0]), "total_revenue", lookup) == 3.0
    with pytest.raises(ValueError, match="blended_roas does not add up"):
        common.additive_total(pd.Series([1.0, 2.0]), "blended_roas", lookup)


def _template_arithmetic(node: jinja2.nodes.Node) -> list[str]:
    ops = (jinja2.nodes.Add, jinja2.nodes.Sub, jinja2.nodes.Mul, jinja2.nodes.Div, jinja2.nodes.FloorDiv, jinja2.nodes.Mod, jinja2.nodes.Pow)
    found = [f"line {n.lineno}: {type(n).__name__}" for n in node.find_all(ops)]
    found += [f"line {n.lineno}: filter {n.name}" for n in node.find_all(jinja2.nodes.Filter) if n.name in ("sum", "round", "abs")]
    return found


def test_templates_do_no_arithmetic():
    env = environment()
    names = [n for n in env.list_templates() if n.endswith(".html.j2")]
    assert {"page.html.j2", "blocks.html.j2", "executive.html.j2", "marketing_roi.html.j2", "data_quality.html.j2"} <= set(names)
    for name in names:
        source = env.loader.get_source(env, name)[0]
        assert not _template_arithmetic(env.parse(source)), name
    assert _template_arithmetic(env.parse("{{ row.revenue / row.spend }}"))  # a planted ratio is found


def test_templates_and_stylesheet_are_package_data():
    """Found through importlib.resources (as from an installed wheel), and covered by pyproject's package-data globs."""
    folder = template_files()
    files = {p.name for p in folder.iterdir()}
    assert {"page.html.j2", "blocks.html.j2", "executive.html.j2", "marketing_roi.html.j2", "data_quality.html.j2", "report.css"} <= files
    assert "--accent" in stylesheet() and resources.files("marketing_assets").joinpath("templates", "report.css").is_file()
    pyproject = tomllib.loads((Path(marketing_assets.__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["marketing_assets"]
    for name in files:
        assert any(fnmatch.fnmatch(f"templates/{name}", g) for g in globs), name


def test_headline_tile_moves_by_the_dictionary_change_kpi_else_shows_the_previous_month():
    import pandas as pd

    from marketing_assets.lib.kpis import dictionary_frame
    from marketing_assets.lib.reports.dictionary import KpiLookup

    assert KpiLookup(None).change_kpi("total_revenue", ["revenue_growth_mom"]) == "revenue_growth_mom"  # from the packaged dictionary
    lookup = KpiLookup(dictionary_frame())
    assert lookup.change_kpi("total_revenue", ["revenue_growth_yoy", "revenue_growth_mom"]) == "revenue_growth_mom"
    assert lookup.change_kpi("blended_roas", ["revenue_growth_mom", "revenue_growth_yoy"]) is None
    oct_, nov = pd.Timestamp("2025-10-01"), pd.Timestamp("2025-11-01")
    revenue, growth = pd.Series({oct_: 100.0, nov: 110.0}), pd.Series({nov: 0.1})
    tile = executive.tile(lookup, "total_revenue", revenue, nov, "USD", "revenue_growth_mom", growth)
    assert [getattr(p, "text", p) for p in tile.delta] == ["▲ +10.0%", " vs Oct 2025"]  # the published growth, not 110 / 100 - 1
    roas = executive.tile(lookup, "blended_roas", pd.Series({oct_: 2.0, nov: 3.0}), nov, "USD", None, pd.Series(dtype=float))
    assert [getattr(p, "text", p) for p in roas.delta] == ["▲", " from 2.00× in Oct 2025"] and roas.delta[0].cls == "up"
