"""Benchmarks of assistant-graph against the patterns users already know.

Run ``python -m benchmarks`` (``--quick`` for a smoke run). Each module measures one thing:

- :mod:`benchmarks.hop_overhead`: time one delegation hop adds, against a LangChain
  ``create_agent`` sub-agent wrapped in a ``@tool`` and deepagents' ``task`` tool;
- :mod:`benchmarks.fan_out`: wall time of K parallel sub-assistant calls against one call;
- :mod:`benchmarks.long_threads`: time per turn and checkpoint bytes of one long thread,
  with and without :func:`assistant_graph.compact_thread`, and the variants of
  :mod:`benchmarks.storage_variants` side by side;
- :mod:`benchmarks.tokens_forwarded`: what a sub-assistant receives, against forwarding
  the full history;
- :mod:`benchmarks.memory_peak`: peak memory over 1,000 stored threads run one after another;
- :mod:`benchmarks.turn_profile`: where the time of one turn at N = 80 goes (py-spy, or
  pyinstrument);
- :mod:`benchmarks.throughput`: threads per second of 200 concurrent two-level
  delegations, on ``InMemorySaver`` and ``AsyncSqliteSaver``.

Absolute times on shared machines are noise; every section reports ratios measured in the
same run.
"""
