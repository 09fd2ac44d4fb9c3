"""The ``sourcing`` command line.

    sourcing index build --catalog DIR --out DIR
    sourcing run IMAGE --market US [--json]
    sourcing demo
    sourcing eval run --set FILE --out DIR
    sourcing compliance --market EU --title "..." [--description "..."] [--hs 8516] [--json]
    sourcing lab check N [--path DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(help="Open sourcing agent: one product photo in, a grounded factory shortlist "
                       "out.", no_args_is_help=True, pretty_exceptions_enable=False)
index_app = typer.Typer(help="Build the image index of a supplier catalog.", no_args_is_help=True)
eval_app = typer.Typer(help="Score the agent on an eval set.", no_args_is_help=True)
search_app = typer.Typer(help="Search the catalog by photo or by words.", no_args_is_help=True)
lab_app = typer.Typer(help="Course labs (labs/README.md): check an exercise.",
                      no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(eval_app, name="eval")
app.add_typer(search_app, name="search")
app.add_typer(lab_app, name="lab")

# piped output (CI logs, files) gets a wide table instead of rich's 80-column default
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

# reserved query photos of the demo catalog shown by `sourcing demo` (seller photos, not listed)
DEMO_CASES = ("demo-mh03-back", "demo-wj01-back", "demo-steam-iron-main")


def _fail(message: str, code: int = 2) -> None:
    # escaped: a message quoting a value such as "[x]" must not be read as rich markup
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def _then(problem: Exception, outcome: str) -> str:
    """``problem``, then what was done about it: on the same line, or on a line of its own
    after a problem that lists several (one a line)."""
    text = str(problem)
    return f"{text}\n{outcome}" if "\n" in text else f"{text}; {outcome}"


# settings the commands take as options: a bad value given there is named by its option
SETTING_OPTIONS = {"catalog_dir": "--catalog", "embedder": "--embedder",
                   "index_backend": "--backend", "index_type": "--index-type"}


def _settings(**overrides: Any):
    from pydantic import ValidationError

    from api.settings import Settings, settings_error_message

    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:  # one line per problem, naming the variable or option
        _fail(settings_error_message(exc, {key: option for key, option in SETTING_OPTIONS.items()
                                           if key in given}))
    except Exception as exc:  # e.g. pydantic-settings' own parse errors, which name the variable
        _fail(str(exc))


def _runner(settings, build_if_missing: bool = False, warm: bool = True, rulebook=None):
    """The runner on real services; every problem with the rules, market tables, catalog,
    index or data files is one ``error:`` line and exit 2. ``build_if_missing``: the command may
    build a missing index, which it does only for the default demo setup
    (``may_build_missing_index``); elsewhere a missing index is refused with the command that
    builds it."""
    from agents.market.tools import MarketTableError
    from agents.run import SourcingRunner
    from api.services import build_services, may_build_missing_index
    from data.catalog.importer import CatalogError
    from retrieval.index import IndexMismatchError, IndexNotFoundError, IndexUnavailableError

    rulebook = rulebook or _load_rulebook(settings.rules_dir)
    build = build_if_missing and may_build_missing_index(settings)
    try:
        runner = SourcingRunner(build_services(settings, build_index_if_missing=build,
                                               rulebook=rulebook))
        if warm:
            runner.warm_up()
        return runner
    except CatalogError as exc:
        _fail(f"catalog {settings.catalog_dir} has problems:\n{exc}")
    except MarketTableError as exc:
        _fail(str(exc))
    except (IndexNotFoundError, IndexMismatchError, IndexUnavailableError) as exc:
        _fail(str(exc))
    except FileNotFoundError as exc:  # e.g. the trade tables under SOURCING_DATA_DIR
        missing = Path(exc.filename or "")
        where = (" (SOURCING_DATA_DIR)" if missing.is_relative_to(settings.data_dir) else "")
        _fail(f"file not found: {exc.filename or exc}{where}")


def _checked_inputs(settings, image: Path, market: str):
    """The photo decoded and the market found before anything heavy loads (the models and
    the index take seconds), so that a typo fails at once. Returns the rule book it loaded,
    for the services to reuse."""
    from agents.compliance.rules import RuleBook, UnknownMarketError
    from retrieval.images import ImageDecodeError, decode_image, read_photo_bytes

    if not image.exists():
        _fail(f"image not found: {image}")
    try:
        decode_image(read_photo_bytes(image), name=image.name)
        rulebook = RuleBook.load(settings.rules_dir)
        rulebook.market_rules(market)
    except (ImageDecodeError, UnknownMarketError, ValueError) as exc:
        _fail(str(exc))
    return rulebook


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


def _load_catalog_or_fail(settings, what: str):
    from data.catalog.importer import CatalogError, load_catalog

    try:
        return load_catalog(settings.catalog_dir)
    except CatalogError as exc:
        _fail(f"catalog {settings.catalog_dir} has problems; {what}:\n{exc}")


@index_app.command("build")
def index_build(
    catalog: Path = typer.Option(None, help="Catalog folder (suppliers.csv, listings.csv, "
                                            "images). Default: the demo catalog."),
    out_dir: Path = typer.Option(None, "--out", help="Index folder to write. Default: "
                                                     "SOURCING_INDEX_DIR."),
    embedder: str | None = typer.Option(None, help="descriptor or clip"),
    backend: str | None = typer.Option(None, help="faiss (default) or qdrant"),
    index_type: str | None = typer.Option(None, help="FAISS index: auto, flat, hnsw or ivf"),
    features: bool = typer.Option(True, help="Also describe every photo for the re-ranker "
                                             "(about 25 ms a photo, once), ahead of start-up"),
) -> None:
    """Validate a catalog and build its image index (an existing index is replaced only when
    the new one is complete), then the re-ranker's photo features beside it."""
    from api.services import build_catalog_index, make_image_embedder
    from retrieval.images import ImageDecodeError
    from retrieval.index import IndexUnavailableError

    settings = _settings(catalog_dir=catalog, index_dir=out_dir, embedder=embedder,
                         index_backend=backend, index_type=index_type)
    loaded = _load_catalog_or_fail(settings, "the index was not written")
    image_embedder = make_image_embedder(settings)
    try:
        index = build_catalog_index(settings, loaded, image_embedder)
    except (ImageDecodeError, IndexUnavailableError) as exc:
        _fail(_then(exc, "the index was not written"))
    out.print(f"indexed {len(index)} photos of {len(loaded.listings)} listings from "
              f"{len(loaded.suppliers)} suppliers with {image_embedder.name} "
              f"({settings.index_backend}, {getattr(index, 'index_type', 'collection')}) -> "
              f"{settings.index_dir}")
    if features:
        _describe_for_reranker(settings, loaded)


def _describe_for_reranker(settings, loaded) -> None:
    """The re-ranker's features of every catalog photo written to the features file beside the
    index (only photos new or changed since), so that the first start-up does not compute them."""
    if not settings.rerank:
        return
    from api.services import feature_store_path
    from retrieval.feature_store import warm_catalog
    from retrieval.rerank import LocalFeatureReranker

    store = feature_store_path(settings)
    report = warm_catalog(LocalFeatureReranker(cache_size=0), loaded, store, progress=True)
    if report is not None:
        out.print(f"re-ranker features: {report.loaded} kept, {report.computed} computed -> "
                  f"{store}")


@index_app.command("update")
def index_update(
    catalog: Path = typer.Option(None, help="Catalog folder. Default: the demo catalog."),
    out_dir: Path = typer.Option(None, "--out", help="Index folder. Default: "
                                                     "SOURCING_INDEX_DIR."),
    features: bool = typer.Option(True, help="Also describe new or changed photos for the "
                                             "re-ranker, ahead of start-up"),
) -> None:
    """Bring an index up to date with its catalog: embed only added or changed listings,
    delete removed ones, rewrite payloads of changed suppliers; no full rebuild. Then the
    re-ranker's features of new or changed photos."""
    from api.services import make_image_embedder
    from retrieval.build import embedder_version, update_index
    from retrieval.images import ImageDecodeError
    from retrieval.index import (
        IndexMismatchError,
        IndexNotFoundError,
        IndexUnavailableError,
        open_index,
    )

    settings = _settings(catalog_dir=catalog, index_dir=out_dir)
    loaded = _load_catalog_or_fail(settings, "the index was not changed")
    image_embedder = make_image_embedder(settings)
    try:
        index = open_index(settings.index_dir, expected_embedder=image_embedder.name,
                           expected_dim=image_embedder.dim,
                           expected_version=embedder_version(image_embedder),
                           qdrant_url=settings.qdrant_url, qdrant_api_key=settings.qdrant_api_key)
        report = update_index(index, loaded, image_embedder)
        index.save(settings.index_dir)
    except (IndexNotFoundError, IndexMismatchError) as exc:
        _fail(str(exc))
    except (ImageDecodeError, IndexUnavailableError) as exc:
        _fail(_then(exc, "the index was not changed"))
    out.print(f"updated {settings.index_dir}: {len(report.added)} added, "
              f"{len(report.updated)} updated, "
              f"{len(report.deleted)} deleted, {report.unchanged} unchanged "
              f"({report.photos_embedded} photos embedded)")
    if features:
        _describe_for_reranker(settings, loaded)


@app.command()
def run(
    image: Path = typer.Argument(..., help="Product photo (JPEG, PNG, WebP...)"),
    market: str = typer.Option("US", help="Target market code, e.g. US or EU"),
    as_json: bool = typer.Option(False, "--json", help="Print the result contract as JSON"),
    constraints: str | None = typer.Option(
        None, help='Hard constraints as JSON, e.g. \'{"max_moq": 100}\''),
    top_k: int | None = typer.Option(None, min=1, max=50,
                                     help="Shortlist size, 1 to 50 (as the API's top_k)"),
    title: str | None = typer.Option(None, help="Optional product title from the seller"),
    sale_price: float | None = typer.Option(
        None, help="Your sale price in USD; the margin is computed at it instead of the "
                   "market's median price"),
    shipping_mode: str | None = typer.Option(
        None, help="express, air or sea; default: chosen by shipment weight"),
) -> None:
    """Find factories for one photo and print the grounded shortlist."""
    from agents.shortlist.landed_cost import checked_sale_price, checked_shipping_mode
    from agents.supplier_match.tools import Constraints

    parsed = None
    try:
        if constraints:
            try:
                parsed = json.loads(constraints)
            except json.JSONDecodeError as exc:
                raise ValueError(f"--constraints is not valid JSON: {exc.msg}") from None
            if not isinstance(parsed, dict):
                raise ValueError("--constraints must be a JSON object, e.g. '{\"max_moq\": 100}'")
            Constraints.from_dict(parsed)
        checked_sale_price(sale_price)
        checked_shipping_mode(shipping_mode)
    except ValueError as exc:
        _fail(str(exc))
    settings = _settings()
    rulebook = _checked_inputs(settings, image, market)
    runner = _runner(settings, build_if_missing=True, rulebook=rulebook)
    result = _run_one(runner, image, market, constraints=parsed, top_k=top_k, title=title,
                      sale_price=sale_price, shipping_mode=shipping_mode)
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

    return REPO_ROOT / "evals" / "sets" / "demo_reserved" / "demo_reserved.jsonl"


EVAL_ERRORS_SHOWN = 5  # failed cases printed by `eval run`; report.json lists them all


@eval_app.command("run")
def eval_run(
    set_path: Path = typer.Option(None, "--set", help="Eval set (JSONL). Default: the demo "
                                                      "catalog's reserved query photos."),
    out_dir: Path | None = typer.Option(None, "--out", help="Folder for report.json, report.md "
                                                            "and plots"),
    agent_spec: str | None = typer.Option(None, "--agent", help="Agent to score: MODULE:NAME or "
                                                                 "FILE.py:NAME (default: this "
                                                                 "project's graph)"),
    catalog: Path | None = typer.Option(None, "--catalog", help="Supplier catalog folder"),
    index: Path | None = typer.Option(None, "--index", help="Index folder"),
) -> None:
    """Run every case of an eval set through an agent and print its metrics."""
    from evals.agent import ProjectAgent, load_agent, provenance
    from evals.compliance import text_only_agent
    from evals.runner import format_table, run_eval
    from evals.sets import load_eval_set

    chosen = set_path or demo_set_path()
    settings = _settings(catalog_dir=catalog, index_dir=index)
    # the project's agent serves the markets it has rules for: a typo fails on its line now;
    # another agent may serve others (a lab's own rules), so its markets are its business
    # (loaded once, for this check and for the project's agent below)
    rulebook = None if agent_spec else _load_rulebook(settings.rules_dir)
    try:
        cases = load_eval_set(chosen, rulebook.market_rules if rulebook else None)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    if agent_spec:
        try:
            agent = load_agent(agent_spec)
        except ValueError as exc:
            _fail(str(exc))
        agent_name = agent_spec
        record = provenance(settings=None, set_path=chosen)
    else:
        # text-only cases run the compliance check and the HS classifier on the words; the image
        # index is built only when a case has a photo
        runner = (_runner(settings, build_if_missing=True, rulebook=rulebook)
                  if any(case.image is not None for case in cases) else None)
        text_agent = None
        if any(case.image is None for case in cases):
            from agents.market.hs import HSClassifier
            from retrieval.embedders.text import MiniLMTextEmbedder

            services = runner.services if runner else None
            text_agent = text_only_agent(
                rulebook,
                services.hs_classifier if services else HSClassifier.load(
                    settings.data_dir / "trade"),
                services.text_embedder if services else MiniLMTextEmbedder(
                    settings.text_model_path))
        agent = ProjectAgent(runner, text_agent)
        agent_name = agent.name
        record = provenance(runner.services if runner else None, settings, chosen)
    report = run_eval(cases, agent, out_dir, agent_name=agent_name, set_path=chosen,
                      provenance=record)
    table = Table(title=f"eval: {chosen.name}")
    rows = format_table(report)
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in rows[1:]:
        table.add_row(*row)
    out.print(table)
    _print_compliance_by_market(report)
    if out_dir:
        out.print(f"report: {out_dir / 'report.json'}, {out_dir / 'report.md'} and plots")
    errors = report["errors"]
    if errors:
        shown = EVAL_ERRORS_SHOWN
        err.print(f"{len(errors)} of {len(cases)} case(s) failed"
                  + (f" (all listed in {out_dir / 'report.json'})" if out_dir else "") + ":")
        for error in errors[:shown]:
            err.print(f"  {error['id']}: {error['error']}")
        if len(errors) > shown:
            err.print(f"  ... and {len(errors) - shown} more"
                      + ("" if out_dir else " (run with --out to keep them all)"))
    if not report["metrics"]["n"]:
        err.print("error: no case was scored")
        raise typer.Exit(1)


@eval_app.command("compare")
def eval_compare(
    base: Path = typer.Argument(..., help="Baseline report.json (or its folder)"),
    new: Path = typer.Argument(..., help="New report.json (or its folder)"),
    tolerance: float = typer.Option(0.02, "--tolerance", min=0.0,
                                    help="Largest allowed move the wrong way, absolute"),
    gate_latency: bool = typer.Option(False, "--gate-latency",
                                      help="Let latency regressions fail too"),
    any_sets: bool = typer.Option(False, "--allow-different-sets",
                                  help="Compare reports of different eval sets (refused "
                                       "otherwise)"),
) -> None:
    """Print metric differences with their 95% intervals; exit 1 when a metric regresses, 2
    when the reports come from different eval sets."""
    from evals.compare import compare, load_report, mismatch

    try:
        base_report, new_report = load_report(base), load_report(new)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    problem = mismatch(base_report, new_report)
    if problem and not any_sets:
        _fail(f"{problem}; their metrics are means over different cases. Pass "
              "--allow-different-sets to compare them anyway.")
    if problem:
        err.print(f"warning: {problem}")
    rows = compare(base_report, new_report, tolerance, gate_latency)
    table = Table(title=f"{base} -> {new} (tolerance {tolerance:g})")
    for column in ("metric", "base", "new", "diff", "base 95%", "new 95%", ""):
        table.add_column(column, justify="left" if column in ("metric", "") else "right")

    def fmt(value):
        return "-" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))

    def span(value):
        return f"[{value[0]:.3f}, {value[1]:.3f}]" if value else ""

    for row in rows:
        table.add_row(row["metric"], fmt(row["base"]), fmt(row["new"]), fmt(row["diff"]),
                      span(row["base_interval"]), span(row["new_interval"]),
                      "REGRESSED" if row["regressed"] else "")
    out.print(table)
    regressed = [row["metric"] for row in rows if row["regressed"]]
    if regressed:
        err.print(f"regression beyond {tolerance:g}: {', '.join(regressed)}")
        raise typer.Exit(1)
    out.print("no regression")


@eval_app.command("grounding")
def eval_grounding(
    cases: int = typer.Option(10, "--cases", min=1, help="Reserved demo photos to run"),
    false_every: int = typer.Option(3, "--false-every", min=1,
                                    help="One false claim in every n-th model answer"),
    out_dir: Path | None = typer.Option(None, "--out", help="Folder for grounding.json"),
) -> None:
    """Check the grounding gate with a local fake model: share of injected false claims removed,
    share of true claims kept."""
    from evals.grounding import grounding_eval
    from evals.sets import load_eval_set

    runner = _runner(_settings(), build_if_missing=True)
    chosen = load_eval_set(demo_set_path())[:cases]
    report = grounding_eval(runner.services, chosen, false_every=false_every)
    table = Table(title="grounding gate (local fake model)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in report.items():
        table.add_row(key, str(value))
    out.print(table)
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "grounding.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        out.print(f"report: {out_dir / 'grounding.json'}")
    if report["false_kept"] or (report["true_removed_rate"] or 0) > 0:
        raise typer.Exit(1)


def _rate_cell(metric: dict[str, Any]) -> str:
    """A rate with its 95 % interval, as the eval tables print it: ``0.870 (0.85-0.90)``."""
    interval = metric.get("ci95")
    return f"{metric['value']:.3f}" + (f" ({interval[0]:.2f}-{interval[1]:.2f})"
                                       if interval else "")


@eval_app.command("market-category")
def eval_market_category(
    catalog: Path = typer.Option(None, "--catalog", help="Catalog folder. Default: the "
                                                         "configured one (the demo catalog)."),
    gold_path: Path = typer.Option(None, "--gold", help="CSV of product_id,categories,reason. "
                                                        "Default: the demo catalog's "
                                                        "hand-labelled market gold."),
    market: str = typer.Option("US", "--market", help="Market whose marketplace data is "
                                                      "matched"),
    out_dir: Path | None = typer.Option(None, "--out", help="Folder for market_category.json"),
) -> None:
    """The market agent's marketplace category for every listing of a catalog, against a
    hand-labelled gold: top-1 accuracy over listings and products as runs match (category names
    and listing titles, trade boilerplate removed), with the boilerplate kept, and against the
    names alone; and the commonest confusions."""
    from agents.compliance.rules import RuleBook
    from agents.market.tools import load_market_tables
    from api.settings import REPO_ROOT
    from data.catalog.importer import CatalogError, load_catalog
    from evals.market_category import VARIANTS, load_market_gold, market_category_eval
    from retrieval.embedders.text import MiniLMTextEmbedder

    settings = _settings()
    folder = catalog or settings.catalog_dir
    gold_file = gold_path or REPO_ROOT / "evals" / "sets" / "market_gold" / "market_gold.csv"
    try:
        rulebook = RuleBook.load(settings.rules_dir)
        tables = load_market_tables(settings.market_dirs,
                                    lambda code: rulebook.market_rules(code).market,
                                    cache_dir=settings.cache_dir)
        data = tables.get(rulebook.market_rules(market).market)
        if data is None:
            raise ValueError(f"no marketplace data for market {market!r}; bundled: "
                             f"{', '.join(sorted(tables)) or 'none'}")
        gold = load_market_gold(gold_file, data.categories.values())
        report = market_category_eval(data, MiniLMTextEmbedder(settings.text_model_path),
                                      load_catalog(folder).listings.values(), gold)
    except (FileNotFoundError, ValueError, CatalogError) as exc:
        _fail(str(exc))
    table = Table(title=f"Market category ({data.label}), {report['n_listings']} listings of "
                        f"{report['n_products']} products in {folder.name}")
    for column in ("matched against", "listings top-1 (95% interval)",
                   "products top-1 (95% interval)"):
        table.add_column(column, justify="left" if column == "matched against" else "right")
    for variant in VARIANTS:
        label = {"as_shipped": "names and listing titles, boilerplate removed (as runs)",
                 "boilerplate_kept": "names and listing titles, boilerplate kept",
                 "names_only": "names only, boilerplate removed",
                 "names_only_boilerplate_kept": "names only, boilerplate kept (before)"}[variant]
        table.add_row(label, *(_rate_cell(report["metrics"][f"{variant}_{unit}_top1"])
                               for unit in ("listings", "products")))
    out.print(table)
    confusions = report["confusions"]["as_shipped"][:8]
    if confusions:
        out.print("commonest wrong picks (as runs):")
        for row in confusions:
            out.print(f"  {row['listings']:>3} x {row['catalog_category']} -> {row['picked']}")
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "market_category.json").write_text(json.dumps(report, indent=2),
                                                      encoding="utf-8")
        out.print(f"report: {out_dir / 'market_category.json'}")


@eval_app.command("hs-holdout")
def eval_hs_holdout(
    set_path: Path = typer.Option(None, "--set", help="Eval set (JSONL) of text cases that "
                                                      "expect an hs_heading. Default: the "
                                                      "hand-labelled HS gold set."),
    out_dir: Path | None = typer.Option(None, "--out", help="Folder for hs_holdout.json"),
) -> None:
    """The HS classifier on product kinds its priors do not name: top-1 / top-3 heading
    accuracy with all priors, with the priors written for each case's kind withheld, with every
    prior of its heading withheld, and with none."""
    from agents.market.hs import HSClassifier
    from api.settings import REPO_ROOT
    from evals.hs_holdout import VARIANTS, hs_holdout
    from evals.sets import load_eval_set
    from retrieval.embedders.text import MiniLMTextEmbedder

    settings = _settings()
    chosen = set_path or REPO_ROOT / "evals" / "sets" / "hs_gold" / "hs_gold.jsonl"
    try:
        cases = load_eval_set(chosen)
        classifier = HSClassifier.load(settings.data_dir / "trade")
        report = hs_holdout(classifier, MiniLMTextEmbedder(settings.text_model_path), cases)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    table = Table(title=f"HS classifier, priors withheld ({report['n']} cases of {chosen.name})")
    for column in ("priors", "heading top-1 (95% interval)", "heading top-3 (95% interval)"):
        table.add_column(column, justify="left" if column == "priors" else "right")
    for variant in VARIANTS:
        table.add_row(variant.replace("_", " "),
                      *(_rate_cell(report["metrics"][f"{variant}_{k}"]) for k in ("top1", "top3")))
    out.print(table)
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "hs_holdout.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        out.print(f"report: {out_dir / 'hs_holdout.json'}")


def _print_compliance_by_market(report: dict[str, Any]) -> None:
    by_market = report.get("by_market") or {}
    if not by_market:
        return
    table = Table(title="compliance by market")
    for column in ("market", "n", "precision", "recall", "f1"):
        table.add_column(column, justify="left" if column == "market" else "right")
    for market, row in by_market.items():
        table.add_row(market, str(row["n"]), f"{row['compliance_precision']:g}",
                      f"{row['compliance_recall']:g}", f"{row['compliance_f1']:g}")
    out.print(table)


def _load_rulebook(rules_dir: Path):
    from agents.compliance.rules import RuleBook

    try:
        return RuleBook.load(rules_dir)
    except ValueError as exc:
        _fail(f"compliance rules in {rules_dir} have problems:\n{exc}")


@app.command()
def compliance(
    market: str = typer.Option(..., help="Target market code, e.g. EU, US, UK, JP, IN, KZ"),
    title: str | None = typer.Option(None, help="Product title"),
    description: str | None = typer.Option(None, help="Product description or seller notes"),
    hs: str | None = typer.Option(None, help="HS code if known, e.g. 8516 or 851671"),
    as_json: bool = typer.Option(False, "--json", help="Print the check as JSON"),
) -> None:
    """Check a product described in words (no photo needed) against a market's rules: every
    requirement with its legal act, why it applies and its official source; questions for facts
    that would decide more rules. Guidance, not legal advice."""
    from agents.compliance.check import check_text

    if not ((title or "").strip() or (description or "").strip()):  # blank says nothing
        _fail("give --title or --description")
    rulebook = _load_rulebook(_settings().rules_dir)
    try:
        report = check_text(market, title=title, description=description, hs_code=hs,
                            rulebook=rulebook)
    except ValueError as exc:  # unknown market (lists the known ones) or a malformed HS code
        _fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        return
    print_compliance(report["compliance"])


def print_compliance(compliance: dict[str, Any]) -> None:
    """A readable list of one market's requirements, checks and open questions."""
    kinds = ", ".join(compliance.get("product_kinds") or []) or "unknown"
    out.print(f"[bold]compliance[/] {compliance['market']} (rules {compliance['rules_market']}) "
              f"| product kinds: {kinds}")
    table = Table(show_lines=True)
    for column in ("legal act", "requirement", "kind", "why it applies", "source"):
        table.add_column(column)
    for requirement in compliance["requirements"]:
        matched = "; ".join(f"{m['condition']} ({m['fact']})" for m in requirement["matched"])
        table.add_row(requirement["legal_act"], requirement["title"], requirement["kind"],
                      matched, requirement["source_url"])
    out.print(table)
    for check in compliance.get("checks") or []:
        out.print(f"[bold]{check['check']}[/]: {check['status']}: {check['detail']}")
    for question in compliance.get("questions") or []:
        out.print(f"[yellow]to confirm[/] ({', '.join(question['rule_ids'])}): "
                  f"{question['question']}")
    out.print("Guidance from the rules file, not legal advice.")


def _search_filter(raw: str | None):
    from retrieval.filters import SearchFilter

    if not raw:
        return SearchFilter()
    try:
        return SearchFilter.from_dict(json.loads(raw))
    except json.JSONDecodeError as exc:
        _fail(f"--filter is not valid JSON: {exc.msg}")
    except ValueError as exc:
        _fail(str(exc))


def _search_setup(filter_json: str | None, warm: bool):
    """The parsed filter (checked before anything loads) and the services to search with."""
    search_filter = _search_filter(filter_json)
    return search_filter, _runner(_settings(), build_if_missing=True, warm=warm).services


def _print_hits(services, hits, as_json: bool) -> None:
    from api.routes.search import hit_rows  # the API's rows: both answer alike

    rows = hit_rows(services, hits)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return
    table = Table()
    for column in ("#", "listing", "score", "product", "supplier", "kind", "MOQ", "from", "title"):
        table.add_column(column)
    for rank, row in enumerate(rows, 1):
        table.add_row(str(rank), row["listing_id"], f"{row['score']:.3f}", row["product_id"] or "-",
                      row["supplier_id"], row["supplier_kind"] or "unknown", str(row["moq"]),
                      str(row["price_min"]), row["title"][:60])
    out.print(table)


FILTER_HELP = ('Filter as JSON, e.g. \'{"max_moq": 50, "supplier_kind": "factory", '
               '"certifications": ["CE"]}\'')


@search_app.command("image")
def search_image(
    image: Path = typer.Argument(..., help="Product photo"),
    k: int = typer.Option(10, min=1, max=200, help="Listings to return"),
    filter_json: str | None = typer.Option(None, "--filter", help=FILTER_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """The listings whose photos best match a photo (filters applied inside the search)."""
    from retrieval.images import ImageDecodeError, load_image
    from retrieval.search import search_images

    try:  # before the services load (seconds), so that a bad photo fails at once
        photo = load_image(image)
    except ImageDecodeError as exc:
        _fail(str(exc))
    search_filter, services = _search_setup(filter_json, warm=False)
    query = services.encoder().encode(photo)
    hits = search_images(services.index, query.vector, k, search_filter, services.reranker,
                         photo, services.load_catalog_image, view_vectors=query.view_vectors)
    _print_hits(services, hits[:k], as_json)


@search_app.command("text")
def search_text(
    query: str = typer.Argument(..., help="Words describing the product"),
    k: int = typer.Option(10, min=1, max=200, help="Listings to return"),
    filter_json: str | None = typer.Option(None, "--filter", help=FILTER_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Search by words: the CLIP text tower when configured, else MiniLM over listing titles."""
    from retrieval.filters import passes, payload_of
    from retrieval.text_search import TextSearch

    search_filter, services = _search_setup(filter_json, warm=True)
    search = TextSearch(services.catalog, services.text_embedder, services.image_embedder,
                        services.index)
    catalog = services.catalog
    try:
        hits = search.search(query, k=k, search_filter=search_filter,
                             allowed=lambda row: passes(
                                 payload_of(row, catalog.suppliers[row.supplier_id]),
                                 search_filter))
    except ValueError as exc:
        _fail(str(exc))
    if not as_json:
        out.print(f"search mode: {search.mode}")
    _print_hits(services, hits, as_json)


def _money(cost: dict[str, Any] | None) -> str:
    if not cost or cost.get("unit_cost") is None:
        return "unknown"
    mark = "" if cost.get("complete") else "*"
    return f"{cost['unit_cost']:.2f}{mark} ({cost['freight']['mode']})"


def _margin(margin: dict[str, Any] | None) -> str:
    return "unknown" if not margin else f"{margin['per_unit']:.2f} ({margin['pct']:.0f}%)"


@lab_app.command("check")
def lab_check(
    number: int = typer.Argument(..., help="Lab number, 1 to 4"),
    path: Path | None = typer.Option(None, "--path", help="Folder holding your lab files "
                                                          "(default: labs/<lab folder>)"),
) -> None:
    """Grade a lab: every check with what failed and which README step covers it; exit 1 when
    a check fails."""
    from labs.grader import check_lab

    needs_services = number in (2, 4)
    try:
        services = (_runner(_settings(), build_if_missing=True).services
                    if needs_services else None)
        report = check_lab(number, path, services=services)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    for line in report.lines():
        style = ("green" if "[PASS]" in line or line.startswith("PASSED") else
                 "red" if "[FAIL]" in line or line.startswith("NOT YET") else None)
        out.print(line, style=style, highlight=False, markup=False, soft_wrap=True)
    if not report.passed:
        raise typer.Exit(1)


def print_result(result: dict[str, Any]) -> None:
    """A readable summary of one result."""
    product = result["product"]
    hs = ", ".join(f"{c['code']} ({c['score']:.2f})" for c in product.get("hs_candidates") or [])
    out.print(f"[bold]product[/]: {product.get('category') or 'unknown category'}"
              f" | HS candidates: {hs or 'unknown'}")
    table = Table(show_lines=False)
    for column in ("#", "supplier", "kind", "city", "listing", "sim", "price", "MOQ", "lead",
                   "landed", "margin", "score", "compliance"):
        table.add_column(column)
    for item in result["shortlist"]:
        supplier, price = item["supplier"], item["price"]
        price_text = (f"{price['min']}-{price['max']} {price['currency'] or ''}"
                      if price["min"] is not None else "unknown")
        missing = [g["rule_id"] for g in item["compliance"]["gaps"] if g["status"] == "missing"]
        worst = item["compliance"].get("worst_severity")
        table.add_row(str(item["rank"]), f"{supplier['name']} ({supplier['supplier_id']})",
                      supplier.get("kind") or "unknown", supplier.get("city") or "unknown",
                      item["listing"]["listing_id"], f"{item['similarity']:.3f}", price_text,
                      str(item["moq"] if item["moq"] is not None else "unknown"),
                      f"{item['lead_time_days']} d" if item["lead_time_days"] else "unknown",
                      _money(item.get("landed_cost")), _margin(item.get("margin")),
                      f"{item['total']:.3f}",
                      (f"{len(missing)} gap(s), worst {worst}" if missing and worst
                       else f"{len(missing)} gap(s)" if missing else "covered"))
    out.print(table)
    excluded = result.get("excluded") or []
    if excluded:
        out.print(f"[bold]excluded[/] by the constraints: {len(excluded)} candidate(s), e.g. "
                  + escape("; ".join(f"{item['supplier_id']} ({item['listing_id']}): "
                                     f"{', '.join(item['reasons'])}" for item in excluded[:3])),
                  highlight=False)
    market = result["market"]
    if market.get("available"):
        band, category = market["price_band"], market["category"]
        out.print(f"[bold]market[/] {market['market']}: '{category['name']}' "
                  f"(match {category['score']:.2f}) median {band['median']} {band['currency']}, "
                  f"p25-p75 {band['p25']}-{band['p75']} (n={band['n']})")
        for niche in market.get("niches") or []:
            out.print(f"  niche: {niche['label']}: {niche['demand_per_listing']} bought/listing "
                      f"(category {niche['category_demand_per_listing']}), median stars "
                      f"{niche['median_stars']} (category {niche['category_median_stars']})")
        for claim in market.get("narrative") or []:  # written by the model, when one is set up
            out.print(f"  {escape(claim['text'])}", highlight=False)
    else:
        out.print(f"[bold]market[/] {market.get('market')}: {market.get('reason', 'no data')}")
    margin = next((item["margin"] for item in result["shortlist"] if item.get("margin")), None)
    if margin:
        mode = result["request"].get("shipping_mode")
        out.print(f"  margin at {margin['sale_price_basis']} {margin['sale_price']} USD; "
                  + (f"shipping by {mode}, as asked" if mode else
                     "shipping mode by shipment weight"))
    # a cost marked * is computed but incomplete: say what it leaves out, as the result does
    gaps = dict.fromkeys(gap for item in result["shortlist"]
                         if (item.get("landed_cost") or {}).get("unit_cost") is not None
                         and not item["landed_cost"].get("complete")
                         for gap in item["landed_cost"].get("missing") or ["incomplete"])
    if gaps:
        out.print("  * landed cost incomplete: " + escape("; ".join(gaps)), highlight=False)
    for warning in result.get("warnings") or []:  # e.g. a sale price that could not be used
        out.print(f"  [yellow]warning[/]: {escape(warning)}", highlight=False)
    requirements = result["compliance"].get("requirements") or []
    out.print(f"[bold]compliance[/] {result['compliance'].get('market')}: "
              f"{len(requirements)} requirement(s): "
              + "; ".join(f"{r['legal_act']}" for r in requirements[:8])
              + (" ..." if len(requirements) > 8 else ""))
    for question in result["compliance"].get("questions") or []:
        out.print(f"  [yellow]to confirm[/]: {question['question']}")
    _print_model_text(result)
    grounding = result["grounding"]
    out.print(f"[bold]grounding[/]: {grounding['supported']}/{grounding['total']} claims "
              f"supported, {len(grounding['unsupported'])} removed | "
              f"time {result['timings'].get('total', 0):.0f} ms")


def _print_model_text(result: dict[str, Any]) -> None:
    """The run's summary and the first supplier's RFQ draft, when a language model wrote them
    (every supplier's draft is in the result, ``shortlist[].rfq``: ``--json``)."""
    summary = result.get("summary") or []
    if summary:
        out.print("[bold]summary[/]: " + escape(" ".join(claim["text"] for claim in summary)),
                  highlight=False)
    first = next((item for item in result["shortlist"] if item.get("rfq")), None)
    if first is None:
        return
    rfq = first["rfq"]
    out.print(f"[bold]RFQ draft[/] for #{first['rank']} {escape(first['supplier']['name'])} "
              f"({rfq.get('source', 'template')}; every supplier's: --json, shortlist[].rfq)",
              highlight=False)
    for language in ("en", "zh"):
        if rfq.get(language):
            out.print(f"  {language}: {escape(rfq[language])}", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
