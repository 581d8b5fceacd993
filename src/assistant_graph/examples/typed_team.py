"""Scripted replies of the typed team (``assistants/typed_team/``) for notebook 05.

The ``reporter`` asks the ``planet_profiler``, whose ``output_schema`` makes it answer
with data, for the profiles of two planets in parallel, then writes a sentence from
them. The profiler's first answer about Mars leaves out a required field: it gets the
validation errors back and answers again, as a real model would.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage

from assistant_graph._state import message_text
from assistant_graph._sub_assistant import read_artifact
from assistant_graph.testing import (
    ModelCall,
    ScriptedModels,
    ai,
    call_sub_assistant,
    structured_ai,
)

__all__ = [
    "EARTH",
    "MARS",
    "TYPED_QUESTION",
    "TYPED_TEAM",
    "profiler_models",
    "typed_team_models",
]

TYPED_TEAM = "typed_team"
"""The folder of the typed team inside the example assistants."""
TYPED_QUESTION = "How much wider is Earth than Mars, and how many moons does each have?"
MARS = {"planet": "Mars", "diameter_km": 6779, "moons": ["Phobos", "Deimos"]}
EARTH = {"planet": "Earth", "diameter_km": 12742, "moons": ["Moon"]}


def typed_team_models() -> ScriptedModels:
    """The reporter asks for two profiles at once; the profiler fixes its first answer."""
    return ScriptedModels(
        {
            "reporter": [
                ai(
                    tool_calls=[
                        call_sub_assistant("planet_profiler", "Profile of Mars."),
                        call_sub_assistant("planet_profiler", "Profile of Earth."),
                    ]
                ),
                _report,
            ],
            "planet_profiler": [_profile, _profile, _profile],
        }
    )


def profiler_models() -> ScriptedModels:
    """The profiler on its own, as the root: one valid profile."""
    return ScriptedModels({"planet_profiler": [structured_ai(MARS)]})


def _profile(call: ModelCall) -> AIMessage:
    """The profile asked for; the first answer about Mars leaves out the required moons.

    The two calls run in parallel, so the reply depends on the request, not on the order.
    """
    asked = message_text(call.messages[1])
    if "Earth" in asked:
        return structured_ai(EARTH)(call)
    if len(call.messages) == 2:  # the system prompt and the request: a first answer
        return structured_ai({"planet": "Mars", "diameter_km": 6779})(call)
    return structured_ai(MARS)(call)


def _report(call: ModelCall) -> str:
    """The reporter's sentence, built from the profiles it received (typed results)."""
    profiles = [
        artifact["structured_response"]
        for artifact in map(read_artifact, call.messages)
        if artifact is not None and artifact["structured_response"] is not None
    ]
    by_name = {profile["planet"]: profile for profile in profiles}
    mars, earth = by_name["Mars"], by_name["Earth"]
    wider = earth["diameter_km"] - mars["diameter_km"]
    return (
        f"Earth is {wider:g} km wider than Mars ({earth['diameter_km']:g} km against "
        f"{mars['diameter_km']:g} km). Earth has {len(earth['moons'])} moon, Mars has "
        f"{len(mars['moons'])} ({' and '.join(mars['moons'])})."
    )
