"""MCP servers declared in ``mcp.json`` and named in ``tools:``: checked offline at load.

Nothing here starts a server: loading only reads the declarations (connecting is
building a graph's job, see test_mcp_tools.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from assistant_graph import AssistantCatalog, AssistantConfigError
from assistant_graph._mcp_config import (
    MCP_JSON_SCHEMA_FILENAME,
    REDACTED,
    McpSetupError,
    mcp_json_schema,
    servers_from_mapping,
)
from assistant_graph._mcp_tools import McpToolReference
from assistant_graph.cli._app import app

from .conftest import EXAMPLE_ASSISTANTS, AssistantFolder
from .mcp_support import stdio_toolbox, write_mcp_json


def problems_of(error: pytest.ExceptionInfo[AssistantConfigError]) -> list[tuple[str, str, str]]:
    return [(Path(p.file).name, p.field, p.message) for p in error.value.problems]


def helper(folder: AssistantFolder, **fields: Any) -> Path:
    return folder.add("helper", **fields)


class TestDeclaringServers:
    def test_tools_name_a_whole_server_or_one_of_its_tools(self, folder: AssistantFolder) -> None:
        write_mcp_json(folder, box=stdio_toolbox())
        helper(folder, tools=["mcp:box", "mcp:box/add"])

        tools = folder.load().tools_for("helper")

        assert [tool.name for tool in tools] == ["mcp:box", "mcp:box/add"]
        assert all(isinstance(tool, McpToolReference) for tool in tools)
        assert [tool.tool for tool in tools if isinstance(tool, McpToolReference)] == [None, "add"]

    def test_an_unknown_server_is_named_with_file_and_field(self, folder: AssistantFolder) -> None:
        write_mcp_json(folder, box=stdio_toolbox())
        helper(folder, tools=["mcp:files"])

        with pytest.raises(AssistantConfigError) as error:
            folder.load()

        [(file, field, message)] = problems_of(error)
        assert (file, field) == ("helper.yaml", "tools[0]")
        assert "unknown MCP server 'files'" in message
        assert "declared: box" in message

    def test_without_mcp_json_no_server_exists(self, folder: AssistantFolder) -> None:
        helper(folder, tools=["mcp:box"])

        with pytest.raises(AssistantConfigError, match=r"declared: none"):
            folder.load()

    @pytest.mark.parametrize("name", ["mcp:", "mcp:box/", "mcp:box/a/b", "mcp:/add"])
    def test_a_malformed_reference_is_named(self, folder: AssistantFolder, name: str) -> None:
        write_mcp_json(folder, box=stdio_toolbox())
        helper(folder, tools=[name])

        with pytest.raises(AssistantConfigError) as error:
            folder.load()

        [(file, field, message)] = problems_of(error)
        assert (file, field) == ("helper.yaml", "tools[0]")
        assert "is not 'mcp:<server>' or 'mcp:<server>/<tool>'" in message

    def test_a_disabled_server_cannot_be_used(self, folder: AssistantFolder) -> None:
        write_mcp_json(folder, box=stdio_toolbox(disabled=True))
        helper(folder, tools=["mcp:box"])

        with pytest.raises(AssistantConfigError, match=r"tools\[0\]: MCP server 'box' is disabled"):
            folder.load()

    def test_without_the_mcp_extra_the_reference_says_what_to_install(
        self, folder: AssistantFolder, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import importlib.util

        real_find_spec = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *args: None if name == "mcp" else real_find_spec(name, *args),
        )
        write_mcp_json(folder, box=stdio_toolbox())
        helper(folder, tools=["mcp:box"])

        with pytest.raises(AssistantConfigError, match=r"pip install 'assistant-graph\[mcp\]'"):
            folder.load()


class TestMalformedMcpJson:
    def test_malformed_json_is_reported_at_its_line_and_column(
        self, folder: AssistantFolder
    ) -> None:
        folder.write("mcp.json", '{"mcpServers": {\n  "box": {"command": "x",}\n}}')
        helper(folder)

        with pytest.raises(AssistantConfigError) as error:
            folder.load()

        [problem] = error.value.problems
        assert Path(problem.file).name == "mcp.json"
        assert (problem.line, problem.column) == (2, 26)
        assert problem.message.startswith("malformed JSON")

    @pytest.mark.parametrize(
        ("entry", "field", "message"),
        [
            ({"args": ["x"]}, "mcpServers.box", "needs either 'command'"),
            ({"command": "x", "argz": []}, "mcpServers.box.argz", "did you mean 'args'?"),
            ({"url": "ftp://host/mcp"}, "mcpServers.box.url", "http:// or https://"),
            ({"url": "http://h/mcp", "type": "sse"}, "mcpServers.box.type", "'http'"),
            ({"command": "x", "toolTimeout": 0}, "mcpServers.box.toolTimeout", "greater than 0"),
            ({"command": "x", "args": ["${oops"]}, "mcpServers.box.args", "malformed environment"),
            ({"url": "http://h", "headers": {"A": "${1X}"}}, "mcpServers.box.headers", "${NAME}"),
        ],
    )
    def test_a_malformed_entry_is_named_by_its_field(
        self, folder: AssistantFolder, entry: dict[str, Any], field: str, message: str
    ) -> None:
        write_mcp_json(folder, box=entry)
        helper(folder)

        with pytest.raises(AssistantConfigError) as error:
            folder.load()

        [(file, found_field, found_message)] = problems_of(error)
        assert (file, found_field) == ("mcp.json", field)
        assert message in found_message

    def test_a_server_name_with_a_slash_is_refused(self, folder: AssistantFolder) -> None:
        write_mcp_json(folder, **{"my/box": stdio_toolbox()})
        helper(folder)

        with pytest.raises(AssistantConfigError, match=r"mcpServers\.my/box: server names may"):
            folder.load()

    def test_every_problem_of_the_folder_is_listed_together(self, folder: AssistantFolder) -> None:
        write_mcp_json(folder, box={"command": "x", "bogus": 1})
        helper(folder, tools=["mcp:box"], max_steps=0)

        with pytest.raises(AssistantConfigError) as error:
            folder.load()

        fields = {(file, field) for file, field, _ in problems_of(error)}
        assert ("mcp.json", "mcpServers.box.bogus") in fields
        assert ("helper.yaml", "max_steps") in fields


class TestApprovals:
    def test_one_tool_of_a_server_listed_whole_may_need_approval(
        self, folder: AssistantFolder
    ) -> None:
        write_mcp_json(folder, box=stdio_toolbox())
        helper(folder, tools=["mcp:box"], require_approval=["mcp:box/add", "mcp:box"])

        assert folder.load()["helper"].require_approval == ["mcp:box/add", "mcp:box"]

    def test_a_tool_of_a_server_the_assistant_does_not_use_is_refused(
        self, folder: AssistantFolder
    ) -> None:
        write_mcp_json(folder, box=stdio_toolbox(), other=stdio_toolbox())
        helper(folder, tools=["mcp:box/add"], require_approval=["mcp:other/add"])

        with pytest.raises(AssistantConfigError) as error:
            folder.load()

        [(file, field, message)] = problems_of(error)
        assert (file, field) == ("helper.yaml", "require_approval[0]")
        assert "'mcp:other/add' is not one of this assistant's tools" in message


class TestPythonApi:
    def test_from_schemas_takes_servers_in_the_mcp_servers_format(self) -> None:
        catalog = AssistantCatalog.from_schemas(
            [{"name": "helper", "description": "d", "instructions": "i", "tools": ["mcp:box"]}],
            mcp_servers={"box": stdio_toolbox()},
        )
        [reference] = catalog.tools_for("helper")
        assert isinstance(reference, McpToolReference)
        assert reference.server.name == "box"

    def test_from_schemas_reports_a_malformed_server(self) -> None:
        with pytest.raises(AssistantConfigError, match=r"<mcp_servers>: mcpServers\.box"):
            AssistantCatalog.from_schemas([], mcp_servers={"box": {"nothing": 1}})


class TestSecrets:
    def test_references_stay_unexpanded_until_a_connection_is_made(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("BOX_TOKEN", "s3cret-token-value")
        servers, _ = servers_from_mapping(
            {"box": {"url": "http://127.0.0.1:1/mcp", "headers": {"X": "Bearer ${BOX_TOKEN}"}}}
        )
        box = servers["box"]

        assert "s3cret" not in repr(box) + box.describe() + box.config.model_dump_json()
        assert "s3cret" not in json.dumps(box.connection_template())
        assert box.connection()["headers"] == {"X": "Bearer s3cret-token-value"}
        assert box.redact("401 for Bearer s3cret-token-value") == f"401 for {REDACTED}"

    def test_a_default_is_used_when_the_variable_is_unset(self) -> None:
        servers, _ = servers_from_mapping({"box": stdio_toolbox(env={"MODE": "${NOPE:-fast}"})})
        assert servers["box"].connection()["env"] == {"MODE": "fast"}

    def test_an_unset_variable_names_the_field_that_references_it(self) -> None:
        servers, _ = servers_from_mapping(
            {"box": {"url": "http://127.0.0.1:1/mcp", "headers": {"Authorization": "${NOPE}"}}}
        )
        with pytest.raises(McpSetupError) as error:
            servers["box"].connection()
        assert error.value.field == "mcpServers.box.headers.Authorization"
        assert "environment variable NOPE is not set" in str(error.value)


class TestStdioDetails:
    def test_python_runs_this_interpreter_in_the_folder_of_mcp_json(
        self, folder: AssistantFolder
    ) -> None:
        write_mcp_json(folder, box=stdio_toolbox(cwd="sub"))
        helper(folder, tools=["mcp:box"])

        [reference] = folder.load().tools_for("helper")
        assert isinstance(reference, McpToolReference)
        connection = reference.server.connection()
        assert connection["command"] == sys.executable
        assert connection["cwd"] == str(folder.path / "sub")


class TestSchemaAndCli:
    def test_the_committed_json_schema_is_current(self) -> None:
        committed = json.loads((EXAMPLE_ASSISTANTS / MCP_JSON_SCHEMA_FILENAME).read_text())
        assert committed == mcp_json_schema(), (
            "assistants/mcp.schema.json is stale: run python -c 'from assistant_graph."
            '_mcp_config import write_mcp_json_schema as w; w("assistants")\''
        )

    def test_the_schema_accepts_the_example_and_refuses_a_typo(self) -> None:
        example = json.loads((EXAMPLE_ASSISTANTS / "mcp_team" / "mcp.json").read_text())
        jsonschema.validate(example, mcp_json_schema())
        example["mcpServers"]["notes"]["comand"] = "python"
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(example, mcp_json_schema())

    def test_list_shows_each_assistants_mcp_tools(self, folder: AssistantFolder) -> None:
        write_mcp_json(folder, box=stdio_toolbox())
        helper(folder, tools=["mcp:box/add", "mcp:box/echo"])

        result = CliRunner().invoke(app, ["list", "--assistants", str(folder.path)])

        assert result.exit_code == 0, result.output
        assert "tools: mcp:box/add, mcp:box/echo" in result.output

    def test_validate_without_connect_starts_nothing(self, folder: AssistantFolder) -> None:
        write_mcp_json(folder, box={"command": "/no/such/program"})
        helper(folder, tools=["mcp:box"])

        result = CliRunner().invoke(app, ["validate", "--assistants", str(folder.path)])

        assert result.exit_code == 0, result.output
        assert result.output.strip() == "1 assistants OK"
