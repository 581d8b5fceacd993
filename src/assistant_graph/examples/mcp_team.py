"""The MCP example team (``assistants/mcp_team/``) and its scripted replies, for notebook 06.

The team: ``front_desk`` answers questions about planets and asks the ``librarian``, whose
tools are those of the ``notes`` MCP server (``notes_server.py``, started over stdio from
``mcp.json``; local, no network). Adding a note needs the person's approval. Offline, the
models are scripted; the MCP server and its tools are real.
"""

from __future__ import annotations

from pathlib import Path

from langchain_core.messages import AIMessage, ToolMessage

from assistant_graph._state import message_text
from assistant_graph.examples.notebook import example_folder
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_sub_assistant, call_tool

__all__ = ["MCP_TEAM", "MCP_TEAM_ROOT", "mcp_team_folder", "mcp_team_models"]

MCP_TEAM = "mcp_team"
"""The team's folder inside ``assistants/``."""
MCP_TEAM_ROOT = "front_desk"
"""The assistant the notebook talks to."""
MARS_QUESTION = "What is the radius of Mars, according to our notes?"
NEW_NOTE = "Add a note on Ceres: a dwarf planet, mean radius 469.7 km."


def mcp_team_folder() -> Path:
    """The folder of the MCP example team."""
    return example_folder(MCP_TEAM)


def mcp_team_models() -> ScriptedModels:
    """Two turns: a question the librarian answers from the notes, then a note to add
    (which waits for the person's approval)."""
    return ScriptedModels(
        {
            "front_desk": [
                ai(tool_calls=[call_sub_assistant("librarian", MARS_QUESTION)]),
                _relay,
                ai(tool_calls=[call_sub_assistant("librarian", NEW_NOTE)]),
                _relay,
            ],
            "librarian": [
                ai(tool_calls=[call_tool("search_notes", query="mars radius")]),
                ai(tool_calls=[call_tool("read_note", title="mars")]),
                _answer_from_note,
                ai(
                    tool_calls=[
                        call_tool(
                            "add_note", title="ceres", text="Ceres: dwarf planet; radius 469.7 km."
                        )
                    ]
                ),
                _report_saving,
            ],
        }
    )


def _relay(call: ModelCall) -> AIMessage:
    """Pass on what the librarian said (the text before its conversation note)."""
    result = message_text(call.last_message)
    return ai(f"The librarian says: {result.split(chr(10))[0]}")


def _answer_from_note(call: ModelCall) -> AIMessage:
    note = message_text(call.last_message)
    return ai(f"According to our notes: {note.split(';')[0]}.")


def _report_saving(call: ModelCall) -> AIMessage:
    last = call.last_message
    if isinstance(last, ToolMessage) and last.status == "error":
        return ai(f"I did not add the note: {message_text(last)}")
    return ai(f"Done: {message_text(last)}.")
