"""Material for the example notebooks in ``notebooks/``, kept here so it can be reused.

Each notebook runs offline when ``OPENAI_API_KEY`` is not set (see :func:`offline_mode`):
on scripted models in-process (:mod:`~assistant_graph.examples.team`) or, for the image
team, on a scripted OpenAI-compatible server on 127.0.0.1
(:mod:`~assistant_graph.examples.image_team`). With a key, the same cells use the models
named in the YAML files.
"""

from assistant_graph.examples.image_team import (
    IMAGE_TEAM_ROOT,
    image_team_folder,
    offline_image_team,
    script_image_team,
)
from assistant_graph.examples.notebook import (
    OFFLINE_ENV,
    EventPrinter,
    example_folder,
    format_event,
    offline_mode,
    thread_usage,
    usage_table,
)
from assistant_graph.examples.team import (
    context_and_resume_models,
    hitl_models,
    hitl_team,
    quickstart_models,
)

__all__ = [
    "IMAGE_TEAM_ROOT",
    "OFFLINE_ENV",
    "EventPrinter",
    "context_and_resume_models",
    "example_folder",
    "format_event",
    "hitl_models",
    "hitl_team",
    "image_team_folder",
    "offline_image_team",
    "offline_mode",
    "quickstart_models",
    "script_image_team",
    "thread_usage",
    "usage_table",
]
