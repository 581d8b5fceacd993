"""Local tools of the example team (no network). Schemas name them by tool name."""

from __future__ import annotations

import ast
import operator

from langchain_core.tools import tool

FACTS = {
    "earth": "Earth's mean radius is 6371 km; it orbits the Sun at about 149.6 million km.",
    "mars": "Mars' mean radius is 3389.5 km; it orbits the Sun at about 227.9 million km.",
    "moon": "The Moon's mean radius is 1737.4 km; it orbits Earth at about 384400 km.",
    "jupiter": "Jupiter's mean radius is 69911 km; it orbits the Sun at about 778.5 million km.",
    "speed of light": "Light travels 299792.458 km per second in vacuum.",
}

_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


@tool
def lookup_fact(topic: str) -> str:
    """Look up a fact about a topic (earth, mars, moon, jupiter, speed of light)."""
    key = topic.strip().lower()
    for name, fact in FACTS.items():
        if name in key or key in name:
            return fact
    return f"No fact about {topic!r}. Known topics: {', '.join(FACTS)}."


@tool
def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression with + - * / // % ** and parentheses."""
    try:
        value = _evaluate(ast.parse(expression, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError) as error:
        return f"Cannot evaluate {expression!r}: {error}"
    return f"{expression} = {value:.6g}" if isinstance(value, float) else f"{expression} = {value}"


@tool
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


def _evaluate(node: ast.AST) -> float | int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise ValueError("exponent too large")
        return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise ValueError(f"unsupported expression element {type(node).__name__}")
