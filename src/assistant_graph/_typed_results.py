"""Typed results: an assistant's final answer as data that matches its ``output_schema``.

An assistant with ``output_schema`` (an inline JSON Schema, or an import string
``package.module:Model`` of a pydantic model) answers with structured output, through
LangChain's own mechanisms, as ``langchain.agents.create_agent`` does for its
``response_format``:

* ``provider``: the model is bound with the provider's native JSON-schema mode
  (``ProviderStrategy(...).to_model_kwargs()``, the ``response_format`` of the OpenAI API)
  next to its tools; its final answer is the JSON text of its last message;
* ``tool``: the model is bound with one more tool, ``final_result``, whose arguments are
  the result, and must call a tool at every step (``tool_choice="any"``); its final answer
  is its call of ``final_result``;
* ``auto`` (the default) picks ``provider`` for OpenAI-compatible chat models
  (``ChatOpenAI``, ``AzureChatOpenAI``) that have no tools to call, and ``tool`` for every
  other case. Next to tools, the JSON-schema mode of the Chat Completions API makes the
  OpenAI SDK require every tool to be strict, so langchain-openai marks them strict, which
  makes every optional argument required and fails for schemas strict mode cannot express
  (MCP tools, ``default`` values on Azure); ``output_strategy: provider`` still asks for it.

Every candidate answer is validated here, after the model call, in the ``agent`` step
(:meth:`TypedOutput.check`): with jsonschema for an inline schema, with pydantic for a
model. A valid answer is the run's ``structured_response`` (JSON data; a pydantic model's
``model_dump(mode="json")``, so it survives checkpoints and the wire). An invalid one goes
back to the model with the validation errors — as the error result of its
``final_result`` call, or as a user message after a JSON answer — and costs one more model
call of the step budget; when the budget is spent the run ends incomplete and its notes
name the errors (see :mod:`._budget`).

The ``final_result`` call of the tool strategy is answered in the same step (a tool
result saying it was accepted) and followed by an AI message whose text is the result as
JSON, so a finished run ends with an AI message with the answer, as every run does, and
the history stays valid for chat APIs.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from jsonschema import SchemaError, validators
from langchain.agents.structured_output import ProviderStrategy
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, StructuredTool
from langchain_openai import AzureChatOpenAI, ChatOpenAI
from pydantic import BaseModel, ValidationError

from assistant_graph._errors import AssistantConfigError
from assistant_graph._state import message_text

if TYPE_CHECKING:
    from assistant_graph._schema import AssistantSchema

__all__ = [
    "OUTPUT_FEEDBACK_MARKER",
    "OUTPUT_STRATEGIES",
    "OUTPUT_TOOL_NAME",
    "OutputSpec",
    "OutputStrategy",
    "TypedOutput",
    "Verdict",
    "check_output_schema",
    "describe_result",
    "is_output_feedback",
    "result_text",
    "typed_output",
]

OutputStrategy: TypeAlias = Literal["auto", "provider", "tool"]
"""How an assistant produces its typed result (see the module docstring)."""
OUTPUT_STRATEGIES: tuple[str, ...] = ("auto", "provider", "tool")
"""The values of :data:`OutputStrategy`."""

OUTPUT_TOOL_NAME = "final_result"
"""The tool a typed assistant calls with its result (tool strategy), and the name of its
JSON schema in the provider's JSON-schema mode."""
OUTPUT_FEEDBACK_MARKER = "assistant_graph_output_feedback"
"""``response_metadata`` key of the user message that sends an invalid answer back."""
RESULT_MARKER = "assistant_graph_structured_response"
"""``response_metadata`` key of the AI message that states an accepted tool-call result."""
IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
MAX_PROBLEMS = 10
"""Validation errors named at most (the model needs the first ones, not a hundred)."""

# Texts the models see, each defined once.
OUTPUT_TOOL_DESCRIPTION = (
    "Give your final answer with this tool: its arguments are your result. Call it on its "
    "own, once you have everything you need."
)
RETURNS_NOTE = "Returns JSON matching this JSON Schema: {schema}"
FEEDBACK = "Your answer was not accepted: {problems}. Answer again with {how}."
HOW_PROVIDER = "only a JSON value that matches the required schema"
HOW_TOOL = f"a call of {OUTPUT_TOOL_NAME} whose arguments match its schema"
ACCEPTED = "Accepted as the final result."
PROBLEM_NOT_JSON = "it is not valid JSON ({error})"
PROBLEM_TEXT_ANSWER = f"it is text; give your final answer by calling {OUTPUT_TOOL_NAME}"
PROBLEM_NOT_ALONE = (
    f"{OUTPUT_TOOL_NAME} was called together with other tools; call it on its own, once "
    "their results are in"
)
PROBLEM_MORE_THAN_ONCE = f"{OUTPUT_TOOL_NAME} was called more than once in one message"

# What load_assistants says about a bad output_schema.
ERROR_NOT_OBJECT = (
    "the JSON Schema must describe a JSON object (type: object): tool arguments and the "
    "providers' JSON-schema modes need an object at the top"
)
ERROR_BAD_SCHEMA = "not a valid JSON Schema: {message} (at {where})"
ERROR_REF = (
    "$ref {ref!r} does not point into this schema; only local references such as "
    "'#/$defs/Name' are supported"
)
ERROR_IMPORT_FORM = "{value!r} is not an import string 'package.module:Model'"
ERROR_IMPORT = "cannot import module {module!r} of {value!r}: {error}"
ERROR_NO_ATTRIBUTE = "module {module!r} has no attribute {attribute!r}"
ERROR_NOT_MODEL = "{value!r} is {kind}, not a pydantic model class (a subclass of BaseModel)"
ERROR_KIND = (
    "expected an inline JSON Schema (a mapping) or an import string 'package.module:Model', "
    "got {kind}"
)
ERROR_TOOL_CLASH = (
    f"a tool of this assistant is named {OUTPUT_TOOL_NAME!r}, the name of the tool a typed "
    "assistant gives its result with; rename the tool"
)

_DATA_KEYWORDS = frozenset({"const", "default", "enum", "examples"})
"""JSON Schema keywords whose values are data, not schemas."""
_NAMED_SCHEMAS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
"""JSON Schema keywords whose values map names to schemas."""


# Loading ---------------------------------------------------------------------------------


def check_output_schema(value: Any) -> Any:
    """``value`` if it is a usable ``output_schema``, for the schema's field validator.

    Raises:
        ValueError: If it is neither None, a mapping nor a string; if an inline schema is
            not a valid JSON Schema of an object; if an import string does not name an
            importable pydantic model class.
    """
    if isinstance(value, str):
        _import_model(value)
    elif isinstance(value, dict):
        _check_json_schema(value)
    elif value is not None:
        raise ValueError(ERROR_KIND.format(kind=type(value).__name__))
    return value


def _check_json_schema(schema: dict[str, Any]) -> None:
    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as error:
        raise ValueError(
            ERROR_BAD_SCHEMA.format(message=error.message, where=error.json_path)
        ) from None
    except Exception as error:  # e.g. a "$schema" that is not a string
        raise ValueError(ERROR_BAD_SCHEMA.format(message=error, where="$")) from None
    if schema.get("type") != "object":
        raise ValueError(ERROR_NOT_OBJECT)
    for ref in _refs(schema):
        if not _resolves(schema, ref):
            raise ValueError(ERROR_REF.format(ref=ref))


def _refs(node: Any) -> list[str]:
    """Every ``$ref`` in a JSON Schema (property names and data are not schemas)."""
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    if not isinstance(node, dict):
        return []
    refs = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    for key, value in node.items():
        if key in _NAMED_SCHEMAS and isinstance(value, dict):
            refs += [ref for sub in value.values() for ref in _refs(sub)]
        elif key not in _DATA_KEYWORDS:
            refs += _refs(value)
    return refs


def _resolves(schema: dict[str, Any], ref: str) -> bool:
    """Whether ``ref`` points into ``schema`` itself (``#`` or ``#/a/b``); nothing else is
    looked up, so nothing is fetched."""
    if ref == "#":
        return True
    if not ref.startswith("#/"):
        return False
    target: Any = schema
    for part in ref[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and key in target:
            target = target[key]
        elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
            target = target[int(key)]
        else:
            return False
    return True


def _import_model(value: str) -> type[BaseModel]:
    if not IMPORT_STRING.match(value):
        raise ValueError(ERROR_IMPORT_FORM.format(value=value))
    module_name, _, attribute = value.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise ValueError(
            ERROR_IMPORT.format(module=module_name, value=value, error=error)
        ) from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(ERROR_NO_ATTRIBUTE.format(module=module_name, attribute=attribute))
        target = getattr(target, part)
    if not (isinstance(target, type) and issubclass(target, BaseModel)):
        kind = (
            f"the class {target.__name__}"
            if isinstance(target, type)
            else "a " + type(target).__name__
        )
        raise ValueError(ERROR_NOT_MODEL.format(value=value, kind=kind))
    return target


# The schema and its validation -----------------------------------------------------------


@dataclass(frozen=True)
class OutputSpec:
    """The shape of an assistant's result, and how to check a candidate against it."""

    json_schema: dict[str, Any]
    """The JSON Schema of the result (a pydantic model's ``model_json_schema()``)."""
    model: type[BaseModel] | None = None
    """The pydantic model, if the schema names one; it then validates instead of jsonschema."""

    @classmethod
    def of(cls, schema: AssistantSchema) -> OutputSpec | None:
        """The output spec of ``schema``, or None if it has no ``output_schema``."""
        value = schema.output_schema
        if value is None:
            return None
        if isinstance(value, str):
            model = _import_model(value)
            return cls(model.model_json_schema(), model)
        return cls(dict(value))

    def validate(self, data: Any) -> tuple[Any, list[str]]:
        """``data`` as JSON data if it matches the schema, and the problems if it does not."""
        if self.model is not None:
            try:
                return self.model.model_validate(data).model_dump(mode="json"), []
            except ValidationError as error:
                return None, _pydantic_problems(error)
        validator = validators.validator_for(self.json_schema)(self.json_schema)
        errors = sorted(validator.iter_errors(data), key=lambda error: list(error.path))
        problems = [f"at {error.json_path}: {error.message}" for error in errors]
        return (None, problems[:MAX_PROBLEMS]) if problems else (data, [])

    def describe(self) -> str:
        """The schema as one compact line (titles left out), for tool descriptions."""
        return json.dumps(_without_titles(self.json_schema), separators=(",", ":"))


def _pydantic_problems(error: ValidationError) -> list[str]:
    problems = []
    for detail in error.errors(include_url=False)[:MAX_PROBLEMS]:
        path = "$" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in detail["loc"]
        )
        problems.append(f"at {path}: {detail['msg']}")
    return problems


def _without_titles(node: Any) -> Any:
    """A JSON Schema without its ``title`` keywords (property names stay, data stays)."""
    if isinstance(node, list):
        return [_without_titles(item) for item in node]
    if not isinstance(node, dict):
        return node
    compact: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key in _DATA_KEYWORDS:
            compact[key] = value
        elif key in _NAMED_SCHEMAS and isinstance(value, dict):
            compact[key] = {name: _without_titles(sub) for name, sub in value.items()}
        else:
            compact[key] = _without_titles(value)
    return compact


def describe_result(schema: AssistantSchema) -> str:
    """The tool description callers see: the assistant's description and, for a typed
    assistant, the JSON Schema of what it returns."""
    spec = OutputSpec.of(schema)
    if spec is None:
        return schema.description
    return f"{schema.description}\n\n{RETURNS_NOTE.format(schema=spec.describe())}"


def is_output_feedback(message: BaseMessage) -> bool:
    """Whether ``message`` is the feedback on an invalid typed answer (not the user's)."""
    return bool(message.response_metadata.get(OUTPUT_FEEDBACK_MARKER))


def result_text(structured_response: Any) -> str:
    """A typed result as the JSON text a caller's model reads."""
    return json.dumps(structured_response, ensure_ascii=False)


# Binding and checking ---------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What a model's answer means for a typed assistant's run."""

    messages: tuple[BaseMessage, ...] = ()
    """Messages to add after the answer: results of ``final_result`` calls, the
    statement of an accepted result, or the feedback on an invalid answer."""
    structured_response: Any = None
    """The accepted result (JSON data), or None."""
    problems: tuple[str, ...] = ()
    """Why the answer was not accepted (empty if it was, or was no final answer)."""


NOT_FINAL = Verdict()
"""The verdict on a model reply that is no final answer (it calls tools)."""


@dataclass(frozen=True)
class TypedOutput:
    """How one assistant gives its typed result: the spec and the chosen strategy."""

    spec: OutputSpec
    """The shape of the result."""
    strategy: Literal["provider", "tool"]
    """Native JSON-schema mode, or a call of the ``final_result`` tool."""

    def bind(
        self, chat_model: BaseChatModel, tools: Sequence[BaseTool]
    ) -> Runnable[LanguageModelInput, BaseMessage]:
        """``chat_model`` bound to ``tools`` and to structured output by the strategy."""
        if self.strategy == "tool":
            return chat_model.bind_tools([*tools, self._output_tool()], tool_choice="any")
        # LangChain names the schema by its title (langchain-openai's bind_tools sends the
        # title as the name and leaves it out of the schema).
        named = {**self.spec.json_schema, "title": OUTPUT_TOOL_NAME}
        settings = ProviderStrategy(named).to_model_kwargs()
        if tools:
            return chat_model.bind_tools(tools, **settings)
        # Without tools nothing converts the request: send the same name and schema.
        untitled = {key: value for key, value in named.items() if key != "title"}
        settings["response_format"]["json_schema"]["schema"] = untitled
        return chat_model.bind(**settings)

    def _output_tool(self) -> BaseTool:
        description = self.spec.json_schema.get("description")
        text = f"{OUTPUT_TOOL_DESCRIPTION}\n\n{description}" if description else None
        return StructuredTool(
            name=OUTPUT_TOOL_NAME,
            description=text or OUTPUT_TOOL_DESCRIPTION,
            args_schema=self.spec.json_schema,
        )

    def check(self, response: BaseMessage) -> Verdict:
        """Judge a model reply: the accepted result, or what to tell the model."""
        if not isinstance(response, AIMessage):
            return NOT_FINAL
        if self.strategy == "tool":
            return self._check_tool_calls(response)
        if response.tool_calls or response.invalid_tool_calls:
            return NOT_FINAL
        try:
            data = json.loads(message_text(response))
        except ValueError as error:
            return self._feedback([PROBLEM_NOT_JSON.format(error=error)])
        accepted, problems = self.spec.validate(data)
        return self._feedback(problems) if problems else Verdict(structured_response=accepted)

    def _check_tool_calls(self, response: AIMessage) -> Verdict:
        calls = response.tool_calls
        outputs = [call for call in calls if call["name"] == OUTPUT_TOOL_NAME]
        if not calls and not response.invalid_tool_calls:
            return self._feedback([PROBLEM_TEXT_ANSWER])
        if not outputs:
            return NOT_FINAL
        if len(calls) > 1:
            problem = PROBLEM_MORE_THAN_ONCE if len(outputs) > 1 else PROBLEM_NOT_ALONE
            return Verdict(_refusals(outputs, [problem]), problems=(problem,))
        accepted, problems = self.spec.validate(outputs[0]["args"])
        if problems:
            return Verdict(_refusals(outputs, problems), problems=tuple(problems))
        closing = AIMessage(content=result_text(accepted), response_metadata={RESULT_MARKER: True})
        result = ToolMessage(ACCEPTED, tool_call_id=outputs[0]["id"], name=OUTPUT_TOOL_NAME)
        return Verdict((result, closing), structured_response=accepted)

    def _feedback(self, problems: Sequence[str]) -> Verdict:
        how = HOW_TOOL if self.strategy == "tool" else HOW_PROVIDER
        text = FEEDBACK.format(problems="; ".join(problems), how=how)
        message = HumanMessage(content=text, response_metadata={OUTPUT_FEEDBACK_MARKER: True})
        return Verdict((message,), problems=tuple(problems))


def _refusals(
    calls: Sequence[Mapping[str, Any]], problems: Sequence[str]
) -> tuple[BaseMessage, ...]:
    text = FEEDBACK.format(problems="; ".join(problems), how=HOW_TOOL)
    return tuple(
        ToolMessage(text, tool_call_id=call["id"], name=OUTPUT_TOOL_NAME, status="error")
        for call in calls
    )


def typed_output(
    schema: AssistantSchema,
    chat_model: BaseChatModel,
    tools: Sequence[BaseTool],
    *,
    source: str = "<schema>",
) -> TypedOutput | None:
    """How ``schema``'s assistant gives its typed result on ``chat_model``, or None if it
    has no ``output_schema``.

    Raises:
        AssistantConfigError: If one of its tools is named ``final_result``.
    """
    spec = OutputSpec.of(schema)
    if spec is None:
        return None
    if any(tool.name == OUTPUT_TOOL_NAME for tool in tools):
        raise AssistantConfigError.single(source, "tools", ERROR_TOOL_CLASH)
    strategy = schema.output_strategy
    if strategy == "auto":
        native = isinstance(chat_model, ChatOpenAI | AzureChatOpenAI) and not tools
        strategy = "provider" if native else "tool"
    return TypedOutput(spec, strategy)
