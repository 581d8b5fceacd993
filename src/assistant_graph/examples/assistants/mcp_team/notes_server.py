"""The notes server of the MCP example team: planet notes over stdio, local, no network.

Written with the official ``mcp`` SDK (FastMCP). ``mcp.json`` next to this file starts it
with the interpreter that runs assistant-graph; any MCP client can start it the same way
(``python notes_server.py``).
"""

from __future__ import annotations

from mcp.server.fastmcp import FastMCP

NOTES = {
    "mars": "Mars: mean radius 3389.5 km; two moons, Phobos and Deimos; a day lasts 24.6 h.",
    "venus": "Venus: mean radius 6051.8 km; no moons; a day lasts longer than its year.",
    "jupiter": "Jupiter: mean radius 69911 km; 95 known moons; the Great Red Spot is a storm.",
}
"""The notes, by title (notes added with add_note last as long as the server runs)."""

server = FastMCP("notes", log_level="WARNING")


@server.tool()
def search_notes(query: str) -> list[str]:
    """The titles of the notes that mention every word of the query (case ignored)."""
    words = query.lower().split()
    return [title for title, text in NOTES.items() if all(w in text.lower() for w in words)]


@server.tool()
def read_note(title: str) -> str:
    """The text of the note with this title."""
    try:
        return NOTES[title.lower()]
    except KeyError:
        raise ValueError(f"no note {title!r}; the notes are: {', '.join(sorted(NOTES))}") from None


@server.tool()
def add_note(title: str, text: str) -> str:
    """Add a note (or replace the one with this title)."""
    NOTES[title.lower()] = text
    return f"saved note {title.lower()!r}"


if __name__ == "__main__":
    server.run("stdio")
