"""load_assistants: everything checked up front, every problem named by file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.tools import tool

from assistant_graph import (
    AssistantCatalog,
    AssistantConfigError,
    AssistantSchema,
    MissingConfigError,
    load_assistants,
)

from .conftest import EXAMPLE_ASSISTANTS, AssistantFolder


def problems(error: pytest.ExceptionInfo[AssistantConfigError]) -> set[tuple[str, str]]:
    return {(Path(p.file).name, p.field) for p in error.value.problems}


def test_the_example_team_loads_with_its_tools_resolved() -> None:
    catalog = load_assistants(EXAMPLE_ASSISTANTS)
    assert set(catalog) == {"proxy", "researcher", "calculator", "writer"}
    assert [t.name for t in catalog.tools_for("researcher")] == ["lookup_fact"]
    assert catalog.source_of("writer").endswith("writer.yaml")
    assert catalog.reachable_from("proxy") == ["proxy", "researcher", "writer", "calculator"]


def test_the_catalog_is_read_only() -> None:
    catalog = load_assistants(EXAMPLE_ASSISTANTS)
    with pytest.raises(TypeError):
        catalog["proxy"] = catalog["writer"]  # type: ignore[index]
    with pytest.raises(Exception, match="frozen"):
        catalog["proxy"].max_steps = 3  # type: ignore[misc]


def test_asking_for_a_missing_assistant_raises_missing_config_error() -> None:
    catalog = load_assistants(EXAMPLE_ASSISTANTS)
    with pytest.raises(MissingConfigError, match=r"'planner'.*known: calculator, proxy"):
        catalog["planner"]
    assert "planner" not in catalog
    assert catalog.get("planner") is None


def test_malformed_yaml_names_the_file(folder: AssistantFolder) -> None:
    folder.write("broken.yaml", "name: broken\ndescription: [unclosed\n")
    with pytest.raises(AssistantConfigError, match=r"broken\.yaml:2:14: malformed YAML") as error:
        folder.load()
    assert problems(error) == {("broken.yaml", "")}


def test_malformed_yaml_keeps_line_and_column_and_shows_the_line(folder: AssistantFolder) -> None:
    folder.write("broken.yaml", "name: broken\ndescription: [unclosed\n")

    with pytest.raises(AssistantConfigError) as error:
        folder.load()

    [problem] = error.value.problems
    assert (problem.line, problem.column) == (2, 14)
    assert problem.excerpt == ("description: [unclosed", "             ^")
    assert problem.message == (
        "malformed YAML: expected ',' or ']', but got the end of the file "
        "(while parsing a flow sequence, which starts here)"
    )
    assert "<unicode string>" not in str(error.value)


def test_a_mistake_in_the_middle_of_a_line_is_pointed_at(folder: AssistantFolder) -> None:
    folder.write("broken.yaml", "name: broken\ndescription: a: b\n")

    with pytest.raises(AssistantConfigError) as error:
        folder.load()

    [problem] = error.value.problems
    assert (problem.line, problem.column) == (2, 15)
    assert problem.excerpt == ("description: a: b", "              ^")
    assert problem.message == "malformed YAML: mapping values are not allowed here"


def test_a_document_that_is_not_a_mapping_is_rejected(folder: AssistantFolder) -> None:
    folder.write("list.yaml", "- a\n- b\n")
    folder.write("empty.yml", "")
    with pytest.raises(AssistantConfigError) as error:
        folder.load()
    assert problems(error) == {("list.yaml", ""), ("empty.yml", "")}
    assert "expected a mapping of fields, got list" in str(error.value)


def test_a_wrong_type_names_the_file_and_field(folder: AssistantFolder) -> None:
    folder.add("helper", max_steps="many", tools="calc")
    with pytest.raises(AssistantConfigError) as error:
        folder.load()
    assert problems(error) == {("helper.yaml", "max_steps"), ("helper.yaml", "tools")}


def test_an_unknown_field_names_the_field(folder: AssistantFolder) -> None:
    folder.add("helper", temprature=0.1)
    with pytest.raises(AssistantConfigError, match=r"helper\.yaml: temprature: unknown field"):
        folder.load()


def test_an_unknown_field_is_explained_in_plain_words_with_a_suggestion(
    folder: AssistantFolder,
) -> None:
    folder.add("helper", calable=True)

    with pytest.raises(AssistantConfigError) as error:
        folder.load()

    [problem] = error.value.problems
    assert problem.field == "calable"
    assert problem.message.startswith(
        "unknown field (did you mean 'callable'?); an assistant has the fields name, "
        "description, instructions, model,"
    )
    assert "Extra inputs" not in str(error.value)


def test_a_missing_field_is_explained_in_plain_words(folder: AssistantFolder) -> None:
    folder.write("helper.yaml", "name: helper\ninstructions: Help.\n")

    with pytest.raises(AssistantConfigError) as error:
        folder.load()

    assert [(p.field, p.message) for p in error.value.problems] == [
        ("description", "missing: every assistant needs this field")
    ]


def test_an_assistant_whose_file_is_broken_still_exists_for_references(
    folder: AssistantFolder,
) -> None:
    folder.add("boss", sub_assistants=["calculator", "writer"])
    folder.add("calculator", callable=True, colour="red")  # an unknown field
    folder.write("writer.yaml", "name: writer\ndescription: [unclosed\n")  # malformed YAML

    with pytest.raises(AssistantConfigError) as error:
        folder.load()

    assert problems(error) == {("calculator.yaml", "colour"), ("writer.yaml", "")}


def test_a_duplicate_name_names_the_second_file(folder: AssistantFolder) -> None:
    folder.add("helper")
    folder.write("helper_copy.yaml", (folder.path / "helper.yaml").read_text())
    with pytest.raises(AssistantConfigError, match="duplicate name 'helper'") as error:
        folder.load()
    assert problems(error) == {("helper_copy.yaml", "name")}


def test_a_sub_assistant_that_does_not_exist_names_the_entry(folder: AssistantFolder) -> None:
    folder.add("boss", sub_assistants=["helper", "ghost"])
    folder.add("helper", callable=True)
    with pytest.raises(AssistantConfigError, match="no assistant named 'ghost'") as error:
        folder.load()
    assert problems(error) == {("boss.yaml", "sub_assistants[1]")}


def test_a_sub_assistant_that_is_not_callable_is_rejected(folder: AssistantFolder) -> None:
    folder.add("boss", sub_assistants=["helper"])
    folder.add("helper")
    with pytest.raises(AssistantConfigError, match="'helper' is not callable") as error:
        folder.load()
    assert problems(error) == {("boss.yaml", "sub_assistants[0]")}


def test_cycles_between_assistants_are_allowed(folder: AssistantFolder) -> None:
    folder.add("ping", callable=True, sub_assistants=["pong"])
    folder.add("pong", callable=True, sub_assistants=["ping", "pong"])
    catalog = folder.load()
    assert catalog.reachable_from("ping") == ["ping", "pong"]


def test_an_unknown_tool_names_the_entry_and_the_known_tools(folder: AssistantFolder) -> None:
    folder.write("tools.py", _TOOLS_PY)
    folder.add("helper", tools=["shout", "whisper"])
    with pytest.raises(AssistantConfigError, match=r"unknown tool 'whisper'.*known tools: shout"):
        folder.load()


def test_a_bad_model_string_names_the_model_field(folder: AssistantFolder) -> None:
    folder.add("helper", model="gpt4")
    with pytest.raises(AssistantConfigError, match=r"helper\.yaml: model: .*provider:model") as e:
        folder.load()
    assert problems(e) == {("helper.yaml", "model")}


def test_every_problem_is_listed_at_once(folder: AssistantFolder) -> None:
    folder.add("one", model="nope")
    folder.add("two", sub_assistants=["ghost"])
    folder.write("three.yaml", "name: [")
    with pytest.raises(AssistantConfigError, match="3 problems") as error:
        folder.load()
    assert problems(error) == {
        ("one.yaml", "model"),
        ("two.yaml", "sub_assistants[0]"),
        ("three.yaml", ""),
    }


def test_a_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(AssistantConfigError, match="assistants folder not found"):
        load_assistants(tmp_path / "nowhere")


def test_a_folder_without_assistants_is_a_config_error(folder: AssistantFolder) -> None:
    with pytest.raises(AssistantConfigError, match="no assistant YAML files"):
        folder.load()


def test_tools_py_of_the_folder_provides_tools_by_name(folder: AssistantFolder) -> None:
    folder.write("tools.py", _TOOLS_PY)
    folder.add("helper", tools=["shout"])
    assert folder.load().tools_for("helper")[0].invoke({"text": "hi"}) == "HI!"


def test_a_tools_py_that_fails_to_import_is_a_config_error(folder: AssistantFolder) -> None:
    folder.write("tools.py", "raise RuntimeError('boom')\n")
    folder.add("helper")
    with pytest.raises(AssistantConfigError, match=r"tools\.py: importing it failed.*boom"):
        folder.load()


def test_tools_may_be_import_strings(folder: AssistantFolder) -> None:
    folder.add("helper", tools=["tests.test_catalog:reverse"])
    assert folder.load().tools_for("helper")[0].name == "reverse"


def test_a_bad_import_string_names_the_entry(folder: AssistantFolder) -> None:
    folder.add("helper", tools=["tests.test_catalog:nothing_here", "no_such_module_x:tool"])
    with pytest.raises(AssistantConfigError) as error:
        folder.load()
    assert problems(error) == {("helper.yaml", "tools[0]"), ("helper.yaml", "tools[1]")}
    assert "has no attribute 'nothing_here'" in str(error.value)
    assert "cannot import module 'no_such_module_x'" in str(error.value)


def test_callers_may_pass_extra_tools(folder: AssistantFolder) -> None:
    folder.add("helper", tools=["reverse"])
    catalog = folder.load(tools=[reverse])
    assert catalog.tools_for("helper") == (reverse,)


def test_yaml_is_parsed_safely_without_constructing_objects(
    folder: AssistantFolder, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    folder.write(
        "evil.yaml",
        f"name: !!python/object/apply:os.system ['touch {marker}']\ndescription: x\n",
    )
    with pytest.raises(AssistantConfigError, match=r"evil\.yaml:1:7: malformed YAML"):
        folder.load()
    assert not marker.exists()


def test_a_catalog_can_be_built_from_python_schemas() -> None:
    catalog = AssistantCatalog.from_schemas(
        [
            AssistantSchema(name="boss", description="d", instructions="i", sub_assistants=["x"]),
            {"name": "x", "description": "d", "instructions": "i", "callable": True},
        ]
    )
    assert catalog["boss"].sub_assistants == ["x"]
    with pytest.raises(AssistantConfigError, match=r"<schema 0>: sub_assistants\[0\]"):
        AssistantCatalog.from_schemas(
            [{"name": "boss", "description": "d", "instructions": "i", "sub_assistants": ["x"]}]
        )


@tool
def reverse(text: str) -> str:
    """Reverse a text."""
    return text[::-1]


_TOOLS_PY = '''
from langchain_core.tools import tool

@tool
def shout(text: str) -> str:
    """Shout a text."""
    return text.upper() + "!"

NOT_A_TOOL = 3
'''
