"""AssistantSchema: what users write, validated strictly, with a JSON Schema for editors."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from assistant_graph import AssistantSchema
from assistant_graph._schema import JSON_SCHEMA_FILENAME, assistant_json_schema

from .conftest import EXAMPLE_ASSISTANTS

MINIMAL = {"name": "helper", "description": "Helps.", "instructions": "Help."}


def test_a_minimal_schema_gets_defaults_for_everything_optional() -> None:
    schema = AssistantSchema.model_validate(MINIMAL)
    assert schema.model == "openai:gpt-4o-mini"
    assert (schema.tools, schema.sub_assistants, schema.callable) == ([], [], False)
    assert schema.budget.max_steps == 10
    assert schema.provider == "openai"


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="temprature"):
        AssistantSchema.model_validate({**MINIMAL, "temprature": 0.2})


@pytest.mark.parametrize("name", ["Helper", "1helper", "help-er", "", "a" * 60])
def test_names_must_be_lowercase_identifiers_that_fit_a_tool_name(name: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        AssistantSchema.model_validate({**MINIMAL, "name": name})


@pytest.mark.parametrize("model", ["gpt-4o", "openai:", ":gpt-4o", "open ai:gpt", "openai:gpt 4"])
def test_model_must_be_provider_colon_model(model: str) -> None:
    with pytest.raises(ValidationError, match="provider:model"):
        AssistantSchema.model_validate({**MINIMAL, "model": model})


def test_max_steps_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="max_steps"):
        AssistantSchema.model_validate({**MINIMAL, "max_steps": 0})


def test_a_tool_listed_twice_is_rejected() -> None:
    with pytest.raises(ValidationError, match="more than once: calc"):
        AssistantSchema.model_validate({**MINIMAL, "tools": ["calc", "calc"]})


def test_the_committed_json_schema_matches_the_model() -> None:
    committed = json.loads((EXAMPLE_ASSISTANTS / JSON_SCHEMA_FILENAME).read_text("utf-8"))
    assert committed == assistant_json_schema(), (
        "assistants/assistant.schema.json is stale: run "
        "python -c 'import assistant_graph as a; a.write_json_schema(\"assistants\")'"
    )


def test_the_json_schema_forbids_extra_fields_and_requires_the_essentials() -> None:
    schema = assistant_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "description", "instructions"}
    assert "max_steps" in schema["properties"]
