"""Run the sourcing graph with your ranking node in place of ``shortlist`` and print the
shortlist. Usage (from the repository root):

    python labs/lab2_ranking/run_node.py [PHOTO] [--constraints JSON] [--weights JSON]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_PHOTO = REPO / "data" / "catalogs" / "demo" / "queries" / "mh03-black_back.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", nargs="?", default=str(DEFAULT_PHOTO))
    parser.add_argument("--market", default="US")
    parser.add_argument("--constraints", default="{}", help='e.g. \'{"max_moq": 50}\'')
    parser.add_argument("--weights", default="{}", help='e.g. \'{"visual": 0, "price": 1}\'')
    args = parser.parse_args()
    if (REPO / "agents").is_dir():  # run from a checkout: its code, installed or not
        sys.path.insert(0, str(REPO))
    from agents.graph import build_graph
    from agents.run import SourcingRunner
    from api.services import build_services
    from api.settings import Settings

    sys.path.insert(0, str(HERE))
    from ranking_node import ranking_node  # your node, from this folder

    services = build_services(Settings(), build_index_if_missing=True)
    services = dataclasses.replace(services, reranker=None)  # as the grader runs it
    runner = SourcingRunner(services, build_graph(nodes={"shortlist": ranking_node}))
    result = runner.run_file(args.photo, args.market,
                             constraints=json.loads(args.constraints) or None,
                             weights=json.loads(args.weights) or None)
    for entry in result["shortlist"]:
        price = (entry.get("price") or {}).get("unit_price_at_quantity")
        print(f"{entry['rank']}. {entry['supplier']['supplier_id']} {entry['supplier']['name']}"
              f" | {entry['listing']['listing_id']} product {entry['product_id']}"
              f" | unit price {price} | total {entry.get('total')}")
    grounding = result["grounding"]
    print(f"claims: {grounding['supported']}/{grounding['total']} supported")
    for claim in grounding["unsupported"]:
        print(f"  removed {claim['id']}: {claim['reason']}")


if __name__ == "__main__":
    main()
