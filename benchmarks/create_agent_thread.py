"""The anchor of the long-thread goals: LangChain's ``create_agent`` doing the same work.

A ``proxy`` agent whose one tool, ``ask_writer``, sends the request to a ``writer`` agent
and returns its answer; the writer keeps its conversation in a thread of its own in the
same saver, so every call continues it (as this library resumes the sub-conversation).
Each turn is the same three model calls as the library's turn (proxy delegates, writer
drafts, proxy answers) with the same scripted policies, and afterwards the proxy's
thread holds 4N messages and the writer's 2N, as the library's does.
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool

from benchmarks.policies import DelegateOnce, langchain_tool_call, scripted
from benchmarks.savers import Store

__all__ = ["CreateAgentThread"]

TOOL = "ask_writer"


class CreateAgentThread:
    """One thread of the ``create_agent`` pair, run turn by turn."""

    def __init__(self, store: Store, draft: str, reply: str) -> None:
        self.store = store
        self.thread = store.thread_id("create-agent-proxy")
        self.writer_thread = store.thread_id("create-agent-writer")
        self.turns = 0
        self.writer_seen = 0
        writer_policy = _CountingWriter(self, draft)
        self.writer = create_agent(
            scripted(writer_policy),  # type: ignore[arg-type]
            tools=[],
            system_prompt="You write and revise short texts.",
            checkpointer=store.saver,
        )
        proxy_policy = DelegateOnce(
            calls=lambda messages: [langchain_tool_call(TOOL)], answer=reply
        )
        self.proxy = create_agent(
            scripted(proxy_policy),
            tools=[self._tool()],
            system_prompt="You are the user's proxy; the writer writes.",
            checkpointer=store.saver,
        )
        self.config: RunnableConfig = {"configurable": {"thread_id": self.thread}}

    def _tool(self) -> BaseTool:
        """``ask_writer``: continue the writer's own thread with the request."""
        writer_config: RunnableConfig = {"configurable": {"thread_id": self.writer_thread}}

        def ask(request: str) -> str:
            result = self.writer.invoke({"messages": [HumanMessage(request)]}, writer_config)
            return str(result["messages"][-1].content)

        return StructuredTool.from_function(
            func=ask, name=TOOL, description="Ask the writer to write or revise the text."
        )

    def turn(self, message: str) -> None:
        """Run one turn."""
        self.turns += 1
        self.proxy.invoke({"messages": [HumanMessage(message)]}, self.config)

    def thread_ids(self) -> list[str]:
        """The proxy's thread and the writer's."""
        return [self.thread, self.writer_thread]

    def reloads_whole(self) -> bool:
        """Whether both threads hold every message, and the writer saw its history."""
        proxy = self.proxy.get_state(self.config).values["messages"]
        writer_config: RunnableConfig = {"configurable": {"thread_id": self.writer_thread}}
        writer = self.writer.get_state(writer_config).values["messages"]
        expected = 2 * self.turns
        return len(proxy) == 2 * expected and len(writer) == expected == self.writer_seen


class _CountingWriter:
    """The writer's policy: a draft, remembering how many messages the call received."""

    def __init__(self, thread: CreateAgentThread, draft: str) -> None:
        self.thread = thread
        self.draft = draft

    def next_reply(self, messages: list[BaseMessage], tools: Any) -> AIMessage:
        self.thread.writer_seen = len(messages)
        return AIMessage(content=self.draft)
