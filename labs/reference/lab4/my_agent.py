"""Lab 4 reference: a variant of the project's agent behind the agent interface.

The variant ranks suppliers by what the photo shows and by price only: it drops the source,
service and compliance criteria from the shortlist weights. ``sourcing eval run --agent
labs/reference/lab4/my_agent.py:MyAgent`` scores it.
"""

from __future__ import annotations

from typing import Any

# shortlist weights this variant sends with every request (the project's defaults otherwise)
WEIGHTS = {"visual": 0.6, "price": 0.4, "moq": 0.0, "responsiveness": 0.0, "reliability": 0.0,
           "source": 0.0, "compliance": 0.0}


class MyAgent:
    """``agent(request) -> result``; built without arguments, or with services to share."""

    def __init__(self, services: Any = None) -> None:
        from agents.run import SourcingRunner

        if services is None:
            from api.services import build_services
            from api.settings import Settings

            services = build_services(Settings(), build_index_if_missing=True)
        self.runner = SourcingRunner(services)
        self.name = "project graph, visual + price weights only"

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        if not request.get("image"):
            raise ValueError(f"case {request.get('id')}: this agent needs a photo")
        return self.runner.run_file(request["image"], request["market"],
                                    constraints=request.get("constraints") or None,
                                    weights=WEIGHTS, title=request.get("title"),
                                    description=request.get("description"))
