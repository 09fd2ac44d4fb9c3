"""Lab 4, your agent. Read labs/lab4_eval/README.md first.

An agent is a callable ``agent(request: dict) -> result dict`` (the contract in
``evals/agent.py``). This one will be a variant of the project's agent: the project's graph,
with shortlist weights of your choice. Score it with
``sourcing eval run --set labs/lab4_eval/small.jsonl --agent labs/lab4_eval/my_agent.py:MyAgent``.
"""

from __future__ import annotations

from typing import Any

# TODO (README step 2): the shortlist weights your variant sends with every request, e.g.
# {"visual": 0.6, "price": 0.4, "source": 0.0}; see "Ranking" in the project README.
WEIGHTS: dict[str, float] = {}


class MyAgent:
    """``agent(request) -> result``; built without arguments, or with services to share."""

    def __init__(self, services: Any = None) -> None:
        from agents.run import SourcingRunner

        if services is None:
            from api.services import build_services
            from api.settings import Settings

            services = build_services(Settings(), build_index_if_missing=True)
        self.runner = SourcingRunner(services)
        self.name = "my variant of the project graph"

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        # TODO (README step 2): answer one request. Refuse a request without a photo with a
        # ValueError; otherwise run the graph on request["image"] for request["market"],
        # passing on the request's constraints, title and description and your WEIGHTS
        # (self.runner.run_file(...), see agents/run.py).
        raise NotImplementedError("TODO (README step 2): MyAgent.__call__ is not written yet")
