"""The ``sourcing`` command line.

    sourcing index build --catalog DIR --out DIR
    sourcing run IMAGE --market US [--json]
    sourcing demo
    sourcing eval run --set FILE --out DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Open sourcing agent: one product photo in, a grounded factory shortlist "
                       "out.", no_args_is_help=True, pretty_exceptions_enable=False)
index_app = typer.Typer(help="Build the image index of a supplier catalog.", no_args_is_help=True)
eval_app = typer.Typer(help="Score the agent on an eval set.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(eval_app, name="eval")

out = Console()
err = Console(stderr=True)

# reserved query photos of the demo catalog shown by `sourcing demo` (seller photos, not listed)
DEMO_CASES = ("demo-mh03-back", "demo-wj01-back", "demo-steam-iron-main")


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def _settings(**overrides: Any):
    from api.settings import Settings

    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except Exception as exc:  # pydantic's message names the variable
        _fail(str(exc))


def _runner(settings, build_if_missing: bool = False):
    from agents.run import SourcingRunner
    from api.services import build_services
    from data.catalog.importer import CatalogError
    from retrieval.index import IndexMismatchError, IndexNotFoundError

    try:
        runner = SourcingRunner(build_services(settings, build_index_if_missing=build_if_missing))
        runner.warm_up()
        return runner
    except CatalogError as exc:
        _fail(f"catalog {settings.catalog_dir} has problems:\n{exc}")
    except (IndexNotFoundError, IndexMismatchError) as exc:
        _fail(str(exc))


def _run_one(runner, image: Path, market: str, **options: Any) -> dict[str, Any]:
    from agents.compliance.rules import UnknownMarketError
    from retrieval.images import ImageDecodeError

    if not image.exists():
        _fail(f"image not found: {image}")
    try:
        return runner.run_file(image, market, **options)
    except (ImageDecodeError, UnknownMarketError, ValueError) as exc:
        _fail(str(exc))
    raise AssertionError("unreachable")


@index_app.command("build")
def index_build(
    catalog: Path = typer.Option(None, help="Catalog folder (suppliers.csv, listings.csv, "
                                            "images). Default: the demo catalog."),
    out_dir: Path = typer.Option(None, "--out", help="Index folder to write. Default: "
                                                     "SOURCING_INDEX_DIR."),
    embedder: str | None = typer.Option(None, help="descriptor or clip"),
) -> None:
    """Validate a catalog and build its image index (an existing index is replaced only when
    the new one is complete)."""
    from data.catalog.importer import CatalogError, load_catalog
    from retrieval.build import build_index
    from retrieval.images import ImageDecodeError

    settings = _settings(catalog_dir=catalog, index_dir=out_dir, embedder=embedder)
    try:
        loaded = load_catalog(settings.catalog_dir)
    except CatalogError as exc:
        _fail(f"catalog {settings.catalog_dir} has problems; the index was not written:\n{exc}")
    from api.services import make_image_embedder

    image_embedder = make_image_embedder(settings)
    try:
        index = build_index(loaded, image_embedder, settings.index_dir)
    except ImageDecodeError as exc:
        _fail(f"{exc}; the index was not written")
    out.print(f"indexed {len(index)} photos of {len(loaded.listings)} listings from "
              f"{len(loaded.suppliers)} suppliers with {image_embedder.name} -> "
              f"{settings.index_dir}")


@app.command()
def run(
    image: Path = typer.Argument(..., help="Product photo (JPEG, PNG, WebP...)"),
    market: str = typer.Option("US", help="Target market code, e.g. US or EU"),
    as_json: bool = typer.Option(False, "--json", help="Print the result contract as JSON"),
    constraints: str | None = typer.Option(
        None, help='Hard constraints as JSON, e.g. \'{"max_moq": 100}\''),
    top_k: int | None = typer.Option(None, help="Shortlist size"),
    title: str | None = typer.Option(None, help="Optional product title from the seller"),
) -> None:
    """Find factories for one photo and print the grounded shortlist."""
    parsed = None
    if constraints:
        try:
            parsed = json.loads(constraints)
        except json.JSONDecodeError as exc:
            _fail(f"--constraints is not valid JSON: {exc.msg}")
    settings = _settings()
    runner = _runner(settings, build_if_missing=True)
    result = _run_one(runner, image, market, constraints=parsed, top_k=top_k, title=title)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        print_result(result)


@app.command()
def demo() -> None:
    """Build the demo index when missing, then run three reserved query photos."""
    from evals.sets import load_eval_set

    settings = _settings()
    runner = _runner(settings, build_if_missing=True)
    cases = {case.id: case for case in load_eval_set(demo_set_path())}
    for case_id in DEMO_CASES:
        case = cases[case_id]
        out.rule(f"[bold]{case.image.name}[/] -> market {case.market}")
        result = _run_one(runner, case.image, case.market)
        print_result(result)
        truth = case.expect.get("source_supplier_id")
        ranks = [item["rank"] for item in result["shortlist"]
                 if item["supplier"]["supplier_id"] == truth
                 and item["product_id"] in case.expect["relevant_product_ids"]]
        found = f"found at rank {ranks[0]}" if ranks else "not in the shortlist"
        out.print(f"ground truth: product {case.expect['relevant_product_ids'][0]} from source "
                  f"factory {truth}: {found}")
    out.print("Three examples; the figures over all 177 reserved photos: `make eval`.")


def demo_set_path() -> Path:
    from api.settings import REPO_ROOT

    return REPO_ROOT / "evals" / "sets" / "demo_reserved.jsonl"


@eval_app.command("run")
def eval_run(
    set_path: Path = typer.Option(None, "--set", help="Eval set (JSONL). Default: the demo "
                                                      "catalog's reserved query photos."),
    out_dir: Path | None = typer.Option(None, "--out", help="Folder for report.json"),
) -> None:
    """Run every case of an eval set through the agent and print its metrics."""
    from evals.runner import format_table, run_eval
    from evals.sets import load_eval_set

    try:
        cases = load_eval_set(set_path or demo_set_path())
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    runner = _runner(_settings(), build_if_missing=True)

    def agent(case):
        if case.image is None:
            raise ValueError("text-only cases need the text agent")
        return runner.run_file(case.image, case.market, constraints=case.constraints or None)

    report = run_eval(cases, agent, out_dir)
    table = Table(title=f"eval: {(set_path or demo_set_path()).name}")
    rows = format_table(report)
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in rows[1:]:
        table.add_row(*row)
    out.print(table)
    if report["errors"]:
        err.print(f"{len(report['errors'])} case(s) failed; see report.json")
    if out_dir:
        out.print(f"report: {out_dir / 'report.json'}")


def print_result(result: dict[str, Any]) -> None:
    """A readable summary of one result."""
    product = result["product"]
    hs = ", ".join(f"{c['code']} ({c['score']:.2f})" for c in product.get("hs_candidates") or [])
    out.print(f"[bold]product[/]: {product.get('category') or 'unknown category'}"
              f" | HS candidates: {hs or 'unknown'}")
    table = Table(show_lines=False)
    for column in ("#", "supplier", "kind", "city", "listing", "sim", "price", "MOQ", "lead",
                   "score", "compliance"):
        table.add_column(column)
    for item in result["shortlist"]:
        supplier, price = item["supplier"], item["price"]
        price_text = (f"{price['min']}-{price['max']} {price['currency'] or ''}"
                      if price["min"] is not None else "unknown")
        missing = [g["rule_id"] for g in item["compliance"]["gaps"] if g["status"] == "missing"]
        table.add_row(str(item["rank"]), f"{supplier['name']} ({supplier['supplier_id']})",
                      supplier.get("kind") or "unknown", supplier.get("city") or "unknown",
                      item["listing"]["listing_id"], f"{item['similarity']:.3f}", price_text,
                      str(item["moq"] if item["moq"] is not None else "unknown"),
                      f"{item['lead_time_days']} d" if item["lead_time_days"] else "unknown",
                      f"{item['total']:.3f}",
                      f"{len(missing)} gap(s)" if missing else "covered")
    out.print(table)
    market = result["market"]
    if market.get("available"):
        band, category = market["price_band"], market["category"]
        out.print(f"[bold]market[/] {market['market']}: '{category['name']}' "
                  f"(match {category['score']:.2f}) median {band['median']} {band['currency']}, "
                  f"p25-p75 {band['p25']}-{band['p75']} (n={band['n']})")
    else:
        out.print(f"[bold]market[/] {market.get('market')}: {market.get('reason', 'no data')}")
    requirements = result["compliance"].get("requirements") or []
    out.print(f"[bold]compliance[/] {result['compliance'].get('market')}: "
              f"{len(requirements)} requirement(s): "
              + "; ".join(f"{r['legal_act']}" for r in requirements[:8])
              + (" ..." if len(requirements) > 8 else ""))
    for question in result["compliance"].get("questions") or []:
        out.print(f"  [yellow]to confirm[/]: {question['question']}")
    grounding = result["grounding"]
    out.print(f"[bold]grounding[/]: {grounding['supported']}/{grounding['total']} claims "
              f"supported, {len(grounding['unsupported'])} removed | "
              f"time {result['timings'].get('total', 0):.0f} ms")


if __name__ == "__main__":  # pragma: no cover
    app()
