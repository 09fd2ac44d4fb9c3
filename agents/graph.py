"""Wiring only: intake -> (supplier_match | market | compliance) -> shortlist -> writer.

The three middle agents read only intake's output, so they run as parallel branches and meet
again in ``shortlist``. Any node can be swapped (a course lab hands in its own) through
``build_graph(nodes={...})``. The writer adds model-written text behind the grounding gate when a
model is configured and passes the result through unchanged otherwise.
"""

from __future__ import annotations

import time
from typing import Any
from collections.abc import Callable

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agents.compliance.node import compliance_node
from agents.context import Services
from agents.intake.node import intake_node
from agents.llm.node import writer_node
from agents.market.node import market_node
from agents.shortlist.node import shortlist_node
from agents.state import InputState, State
from agents.supplier_match.node import supplier_match_node

Node = Callable[[State, Runtime[Services]], dict[str, Any]]

DEFAULT_NODES: dict[str, Node] = {
    "intake": intake_node,
    "supplier_match": supplier_match_node,
    "market": market_node,
    "compliance": compliance_node,
    "shortlist": shortlist_node,
    "writer": writer_node,
}
PARALLEL = ("supplier_match", "market", "compliance")


def timed(name: str, node: Node) -> Node:
    """Wrap a node so its wall time (ms) lands in ``state['timings'][name]``."""

    def run(state: State, runtime: Runtime[Services]) -> dict[str, Any]:
        start = time.perf_counter()
        update = dict(node(state, runtime) or {})
        elapsed = round((time.perf_counter() - start) * 1000, 2)
        update["timings"] = {**(update.get("timings") or {}), name: elapsed}
        return update

    run.__name__ = name
    return run


def build_graph(nodes: dict[str, Node] | None = None):
    """Compile the sourcing graph; ``nodes`` replaces any of the default nodes by name."""
    chosen = {**DEFAULT_NODES, **(nodes or {})}
    unknown = set(chosen) - set(DEFAULT_NODES)
    if unknown:
        raise ValueError(f"unknown node name(s): {', '.join(sorted(unknown))}; "
                         f"the graph has {', '.join(DEFAULT_NODES)}")
    builder = StateGraph(State, context_schema=Services, input_schema=InputState)
    for name, node in chosen.items():
        builder.add_node(name, timed(name, node))
    builder.add_edge(START, "intake")
    for name in PARALLEL:
        builder.add_edge("intake", name)
    builder.add_edge(list(PARALLEL), "shortlist")
    builder.add_edge("shortlist", "writer")
    builder.add_edge("writer", END)
    return builder.compile()
