// assistant-graph ui: the page. Plain JavaScript, no build step, no library.
//
// Everything the assistants, their models and their tools wrote is untrusted: it is only
// ever put into the page as text (text nodes, textContent), never parsed as HTML.
"use strict";

const SUB_ASSISTANT_PREFIX = "sub_assistant__";
const LIST_REFRESH_MS = 4000;
const STATUS_LABELS = {
  running: "running",
  done: "done",
  incomplete: "incomplete",
  failed: "failed",
  waiting: "waiting for input",
  stopped: "stopped",
  unknown: "other assistants",
};

const state = {
  config: { assistants: [], suggestions: [], demo: false },
  threads: [],
  threadId: null,
  thread: null, // { thread_id, assistant, status, pending, turns: [{id, message, recorded, records}] }
  source: null,
  open: new Map(), // details element key -> open?
  answers: new Map(), // request id -> {text} or {approved, reason}
  renderQueued: false,
};

// Building elements ------------------------------------------------------------------------

function h(tag, props, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "style") Object.assign(element.style, value); // CSSOM: allowed by the CSP
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "text") element.textContent = String(value);
    else if (key in element && typeof value !== "string") element[key] = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function $(id) {
  return document.getElementById(id);
}

function badge(status, budget) {
  const label = STATUS_LABELS[status] || status;
  const ranOut = status === "incomplete" && budget ? budgetText(budget) : "";
  return h(
    "span",
    { class: `badge status-${status}`, title: ranOut ? `its ${budget.kind} budget ran out` : null },
    ranOut ? `${label}: ${ranOut}` : label,
  );
}

function budgetText(budget) {
  // What a budget that ran out allowed and what was used: "280 of 250 tokens".
  const count = (value) => Math.round(value).toLocaleString("en-US");
  const { kind, limit, used } = budget;
  if (kind === "tokens") return `${count(used)} of ${count(limit)} tokens`;
  if (kind === "steps") return `${count(used)} of ${count(limit)} model calls`;
  if (kind === "cost") return `$${used.toFixed(4)} of $${limit.toFixed(4)}`;
  if (kind === "time") return `${used.toFixed(0)} s of ${limit} s`;
  return `${kind}: ${used} of ${limit}`;
}

function remembered(key, element, openByDefault) {
  // A <details> whose open state survives re-rendering.
  element.open = state.open.has(key) ? state.open.get(key) : openByDefault;
  element.dataset.key = key;
  element.addEventListener("toggle", () => state.open.set(key, element.open));
  return element;
}

function argsText(args) {
  return Object.entries(args || {})
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
    .join(", ");
}

// Talking to the server ------------------------------------------------------------------

const csrfToken = document.querySelector('meta[name="csrf-token"]').content;

async function api(path, body) {
  const options = body === undefined
    ? {}
    : {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrfToken },
        body: JSON.stringify(body),
      };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function showAlert(message) {
  const alert = $("alert");
  alert.textContent = message;
  alert.hidden = !message;
}

async function act(promise) {
  try {
    showAlert("");
    return await promise;
  } catch (error) {
    showAlert(error.message);
    return null;
  }
}

// Usage and cost ---------------------------------------------------------------------------

// Costs are the events' own cost_usd (US dollars). null (or missing, in threads from before
// costs were recorded) is unknown: some model call had no known price. Unknown stays
// unknown in every sum and is never shown as $0.

const TOKEN_KEYS = ["input_tokens", "output_tokens", "total_tokens"];

function addCost(a, b) {
  return a === null || a === undefined || b === null || b === undefined ? null : a + b;
}

function addTokens(into, tokens) {
  for (const key of TOKEN_KEYS) into[key] += tokens[key] || 0;
  into.cost_usd = addCost(into.cost_usd, tokens.cost_usd);
}

function noTokens() {
  return { input_tokens: 0, output_tokens: 0, total_tokens: 0, cost_usd: 0 };
}

function mergeUsage(into, usage) {
  for (const [path, tokens] of Object.entries((usage && usage.by_path) || {})) {
    addTokens((into.by_path[path] ||= noTokens()), tokens);
    addTokens(into.total, tokens);
  }
  return into;
}

function emptyUsage() {
  return { total: noTokens(), by_path: {} };
}

function ownUsage(usage, key) {
  return { total: { ...usage.by_path[key] }, by_path: { [key]: usage.by_path[key] } };
}

function costLabel(cost) {
  return cost === null || cost === undefined ? "cost unknown" : `$${cost.toFixed(6)}`;
}

function usageLabel(usage) {
  if (!usage || !usage.total.total_tokens) return "";
  const { total_tokens: total, input_tokens: input, output_tokens: output, cost_usd: cost } = usage.total;
  return `${total} tokens (${input} in, ${output} out) · ${costLabel(cost)}`;
}

// The tree of a turn, from its events ---------------------------------------------------

function newNode(key, path, args) {
  return {
    key,
    path,
    name: path[path.length - 1],
    args: args || null,
    status: "running",
    items: [],
    streaming: "",
    input: null,
    message: null,
    uid: null,
    usage: null,
    budget: null,
    result: null,
    start: null,
    end: null,
    bars: [],
    thinkingSince: null,
    openCalls: 0,
    children: [],
  };
}

function buildTree(turn, root) {
  const nodes = new Map();
  const top = newNode("root", [root]);
  top.usage = emptyUsage();
  nodes.set("root", top);
  const tools = new Map();
  const tree = { top, nodes, start: null, end: null, runs: 0, requests: [], final: null };
  for (const record of turn.records) apply(tree, tools, record.event, record.ts);
  return tree;
}

function nodeOf(tree, event) {
  const key = event.parent_tool_call_id || "root";
  let node = tree.nodes.get(key);
  if (!node) {
    node = newNode(key, event.path || [key]);
    tree.nodes.set(key, node);
    tree.top.items.push({ kind: "child", node });
  }
  return node;
}

function think(node, ts, until) {
  // Close the node's model call that was running since node.thinkingSince.
  if (node.thinkingSince !== null && ts !== null) {
    node.bars.push({ kind: "model", from: node.thinkingSince, to: until ?? ts });
  }
  node.thinkingSince = null;
}

const handlers = {
  run_start(tree, tools, event, ts) {
    tree.runs += 1;
    tree.final = null;
    tree.start ??= ts;
    const top = tree.top;
    top.start ??= ts;
    top.status = "running";
    for (const node of tree.nodes.values()) if (node.status === "waiting") node.status = "running";
    if (top.openCalls === 0) top.thinkingSince = ts;
  },
  sub_assistant_start(tree, tools, event, ts) {
    const node = nodeOf(tree, event);
    node.status = "running";
    node.message = event.message;
    node.input = event.input;
    node.start ??= ts;
    if (node.openCalls === 0) node.thinkingSince = ts;
  },
  sub_assistant_end(tree, tools, event, ts) {
    const node = nodeOf(tree, event);
    think(node, ts);
    if (event.status !== "error") node.uid = event.subgraph_uid; // a failed call kept nothing
    node.usage = event.usage || node.usage;
    node.budget = event.budget_exhausted || null;
    node.end = ts;
    if (event.status === "error") node.status = "failed";
    else node.status = event.returning_incomplete ? "incomplete" : "done";
  },
  agent_message(tree, tools, event, ts) {
    const node = nodeOf(tree, event);
    think(node, ts);
    node.streaming = "";
    node.items.push({ kind: "text", text: event.content });
  },
  token(tree, tools, event) {
    nodeOf(tree, event).streaming += event.text;
  },
  tool_call(tree, tools, event, ts) {
    const node = nodeOf(tree, event);
    think(node, ts);
    node.streaming = "";
    node.openCalls += 1;
    if (event.name.startsWith(SUB_ASSISTANT_PREFIX)) {
      const name = event.name.slice(SUB_ASSISTANT_PREFIX.length);
      let child = tree.nodes.get(event.id);
      if (!child) {
        child = newNode(event.id, [...(event.path || node.path), name], event.args);
        child.status = "starting";
        tree.nodes.set(event.id, child);
      }
      child.args = event.args;
      node.items.push({ kind: "child", node: child });
      tools.set(event.id, { kind: "child", node: child });
    } else {
      const item = { kind: "tool", name: event.name, args: event.args, id: event.id, result: null };
      node.items.push(item);
      tools.set(event.id, item);
    }
  },
  tool_result(tree, tools, event, ts) {
    const node = nodeOf(tree, event);
    node.openCalls = Math.max(0, node.openCalls - 1);
    if (node.openCalls === 0 && node.status !== "done") node.thinkingSince = ts;
    const item = tools.get(event.id);
    if (!item) return;
    if (item.kind === "child") {
      item.node.result = { text: event.content, status: event.status };
      if (item.node.status === "starting") item.node.status = event.status === "error" ? "failed" : "done";
    } else {
      item.result = { text: event.content, status: event.status };
    }
  },
  input_request(tree, tools, event, ts) {
    const node = nodeOf(tree, event);
    node.status = "waiting";
    node.bars.push({ kind: "wait", from: ts, to: null });
    const request = { kind: "request", request: event };
    node.items.push(request);
    tree.requests.push(request);
  },
  retry(tree, tools, event) {
    nodeOf(tree, event).items.push({ kind: "retry", retry: event });
  },
  error(tree, tools, event, ts) {
    const node = nodeOf(tree, event);
    think(node, ts);
    node.status = "failed";
    node.items.push({ kind: "error", error: event });
  },
  final(tree, tools, event, ts) {
    const top = tree.top;
    think(top, ts);
    tree.final = event;
    tree.end = ts;
    top.end = ts;
    mergeUsage(top.usage, event.usage);
    top.budget = event.budget_exhausted || null;
    const status = { completed: "done", incomplete: "incomplete", interrupted: "waiting", error: "failed" }[event.status];
    top.status = status || "done";
    for (const node of tree.nodes.values()) {
      if (node.status === "running" || node.status === "starting") {
        node.status = event.status === "interrupted" ? "waiting" : "stopped";
        think(node, ts);
      }
      for (const bar of node.bars) if (bar.kind === "wait" && bar.to === null && event.status !== "interrupted") bar.to = ts;
    }
  },
};

function apply(tree, tools, event, ts) {
  const handler = handlers[event.type];
  if (handler) handler(tree, tools, event, ts);
  if (ts !== null && ts !== undefined) tree.last = ts;
  if (event.type === "run_start") {
    for (const node of tree.nodes.values()) {
      for (const bar of node.bars) if (bar.kind === "wait" && bar.to === null) bar.to = ts;
    }
  }
}

// Drawing the tree -----------------------------------------------------------------------

function renderNode(node, tree, pending, depth) {
  const own = node.key === "root"
    ? (node.usage.by_path[node.name] ? ownUsage(node.usage, node.name) : null)
    : node.usage && node.usage.by_path[node.name] ? ownUsage(node.usage, node.name) : null;
  const rolled = node.usage && node.usage.total.total_tokens ? node.usage : null;
  const head = h(
    "div",
    { class: "node-head" },
    h("span", { class: "node-name" }, node.name),
    badge(node.status, node.budget),
    node.uid
      ? h("button", {
          type: "button",
          class: "uid",
          title: "Open this sub-conversation's whole transcript",
          onclick: () => openTranscript(node.uid),
        }, node.uid)
      : null,
    own ? h("span", { class: "usage", title: "this assistant's own model calls" }, usageLabel(own)) : null,
    rolled && (!own || rolled.total.total_tokens !== own.total.total_tokens)
      ? h("span", { class: "usage rolled", title: "with everything it delegated" }, `Σ ${usageLabel(rolled)}`)
      : null,
  );
  const body = [];
  if (node.key !== "root") body.push(renderInput(node));
  const items = h("ol", { class: "items" });
  for (const item of node.items) items.append(renderItem(item, tree, pending, depth));
  if (node.streaming) items.append(h("li", { class: "item streaming", "aria-live": "off" }, node.streaming));
  if (node.result && node.status !== "running") {
    const result = remembered(`${node.key}:result`, h(
      "details",
      { class: `result ${node.result.status === "error" ? "is-error" : ""}` },
      h("summary", {}, node.result.status === "error" ? "Result (error) returned to the caller" : "Result returned to the caller"),
      h("pre", {}, node.result.text),
    ), node.result.status === "error");
    items.append(h("li", { class: "item" }, result));
  }
  body.push(items);
  return h(
    "div",
    {
      class: `node status-${node.status}`,
      dataset: { key: node.key, path: node.path.join(">"), status: node.status },
      role: "group",
      "aria-label": `${node.name}: ${head.querySelector(".badge").textContent}`,
    },
    head,
    body,
  );
}

function renderInput(node) {
  const args = node.args || {};
  const facts = [];
  if (args.pass_num_previous_messages) facts.push(h("li", {}, `forwards the last ${args.pass_num_previous_messages} message(s) of the conversation`));
  if ((args.pass_contexts || []).length) facts.push(h("li", {}, `forwards the results of: ${args.pass_contexts.join(", ")}`));
  if (args.resume_conversation_uid) facts.push(h("li", {}, `continues conversation ${args.resume_conversation_uid}`));
  const details = h(
    "details",
    { class: "input" },
    h("summary", {}, "Input: ", h("span", { class: "input-message" }, node.message ?? args.message_to_assistant ?? "")),
    facts.length ? h("ul", { class: "forwarded" }, facts) : null,
    node.input ? [h("p", { class: "label" }, "Exactly what it received:"), h("pre", { class: "exact-input" }, node.input)] : null,
  );
  return remembered(`${node.key}:input`, details, false);
}

function renderItem(item, tree, pending, depth) {
  if (item.kind === "child") return h("li", { class: "item child" }, renderNode(item.node, tree, pending, depth + 1));
  if (item.kind === "text") return h("li", { class: "item text" }, item.text);
  if (item.kind === "tool") {
    const result = item.result
      ? h("pre", { class: `tool-result ${item.result.status === "error" ? "is-error" : ""}` }, item.result.text)
      : h("span", { class: "tool-pending" }, "…");
    return h("li", { class: "item tool" }, h("code", {}, `${item.name}(${argsText(item.args)})`), " → ", result);
  }
  if (item.kind === "retry") {
    const retry = item.retry;
    return h("li", { class: "item retry" }, `retry ${retry.attempt}/${retry.max_attempts} in ${retry.wait_seconds}s: ${retry.error}`);
  }
  if (item.kind === "error") {
    const error = item.error;
    return h(
      "li",
      { class: "item error", role: "note" },
      h("strong", {}, `${error.error_type}: `),
      error.message,
      error.advice ? h("p", { class: "advice" }, error.advice) : null,
    );
  }
  return renderRequest(item.request, pending);
}

function renderRequest(request, pending) {
  const open = pending.has(request.id);
  const label = request.kind === "approval" ? "wants approval" : "asks";
  const parts = [h("p", { class: "question" }, h("strong", {}, `${request.path.join(" > ")} ${label}: `), request.question)];
  if (!open) {
    parts.push(h("p", { class: "answered" }, "answered"));
  } else if (request.kind === "approval") {
    const answer = state.answers.get(request.id) || {};
    const name = `approve-${request.id}`;
    const choice = (value, text) => h(
      "label",
      { class: "choice" },
      h("input", {
        type: "radio",
        name,
        value,
        checked: answer.approved === value,
        dataset: { request: request.id, focusKey: `${name}-${value}` },
        onchange: () => state.answers.set(request.id, { ...(state.answers.get(request.id) || {}), approved: value }),
      }),
      text,
    );
    parts.push(
      h("div", { class: "approval" },
        choice("yes", "Approve"),
        choice("no", "Reject"),
        h("label", { class: "reason" }, "Reason (optional) ",
          h("input", {
            type: "text",
            value: answer.reason || "",
            dataset: { focusKey: `reason-${request.id}` },
            oninput: (e) => state.answers.set(request.id, { ...(state.answers.get(request.id) || {}), reason: e.target.value }),
          })),
      ),
    );
  } else {
    const answer = state.answers.get(request.id) || {};
    parts.push(
      h("label", { class: "answer" }, "Your answer ",
        h("input", {
          type: "text",
          value: answer.text || "",
          dataset: { request: request.id, focusKey: `answer-${request.id}` },
          oninput: (e) => state.answers.set(request.id, { text: e.target.value }),
          onkeydown: (e) => { if (e.key === "Enter") { e.preventDefault(); sendAnswers(); } },
        })),
    );
  }
  return h("li", { class: `item request ${open ? "is-pending" : ""}`, dataset: { request: request.id } }, parts);
}

// The timeline of a turn -------------------------------------------------------------------

function renderTimeline(tree, running) {
  if (tree.start === null || tree.start === undefined) {
    return h("p", { class: "hint" }, "No timeline: this turn was not run by this server (its events carry no times).");
  }
  const end = running ? Math.max(Date.now(), tree.last || tree.start) : (tree.last || tree.start);
  const span = Math.max(end - tree.start, 1);
  const at = (ts) => `${(((ts ?? end) - tree.start) / span) * 100}%`;
  const width = (from, to) => `${Math.max((((to ?? end) - from) / span) * 100, 0.4)}%`;
  const rows = [];
  const visit = (node, depth) => {
    if (node.start === null && node.key !== "root") return;
    const from = node.start ?? tree.start;
    const spent = usageLabel(node.usage); // with everything it delegated
    const bars = [h("div", { class: `bar-call status-${node.status}`, style: { left: at(from), width: width(from, node.end) }, title: `${node.name}: ${secs(from, node.end ?? end)}${spent ? ` · ${spent}` : ""}` })];
    for (const bar of node.bars) {
      bars.push(h("div", { class: `bar-${bar.kind}`, style: { left: at(bar.from), width: width(bar.from, bar.to) }, title: `${bar.kind === "model" ? "model call" : "waiting for the person"}: ${secs(bar.from, bar.to ?? end)}` }));
    }
    const open = node.thinkingSince !== null && running;
    if (open) bars.push(h("div", { class: "bar-model open", style: { left: at(node.thinkingSince), width: width(node.thinkingSince, null) } }));
    rows.push(h("div", { class: "timeline-row", role: "listitem" },
      h("span", { class: "timeline-label", style: { paddingLeft: `${depth}em` } }, node.name),
      h("div", { class: "timeline-track" }, bars)));
    for (const item of node.items) if (item.kind === "child") visit(item.node, depth + 1);
  };
  visit(tree.top, 0);
  return h("div", { class: "timeline" },
    h("div", { class: "timeline-axis" }, h("span", {}, "0 s"), h("span", {}, `${(span / 1000).toFixed(1)} s`)),
    h("div", { role: "list" }, rows),
    h("p", { class: "legend" },
      h("span", { class: "key key-call" }), "assistant call ",
      h("span", { class: "key key-model" }), "model call ",
      h("span", { class: "key key-wait" }), "waiting for the person"));
}

function secs(from, to) {
  return `${((to - from) / 1000).toFixed(2)} s`;
}

// The thread -------------------------------------------------------------------------------

function pendingIds() {
  return new Set(((state.thread && state.thread.pending) || []).map((request) => request.id));
}

function renderThread() {
  state.renderQueued = false;
  const thread = state.thread;
  $("empty").hidden = Boolean(thread);
  $("thread-view").hidden = !thread;
  if (!thread) return;
  const focus = rememberFocus();
  $("thread-title").textContent = `${thread.assistant} · thread ${thread.thread_id}`;
  const status = $("thread-status");
  status.className = `badge status-${thread.status}`;
  status.textContent = STATUS_LABELS[thread.status] || thread.status;
  const pending = pendingIds();
  const turns = thread.turns.map((turn, index) => {
    const tree = buildTree(turn, thread.assistant);
    const running = thread.status === "running" && index === thread.turns.length - 1;
    const timeline = remembered(`${turn.id}:timeline`, h("details", { class: "timeline-box" },
      h("summary", {}, "Timeline"), renderTimeline(tree, running)), true);
    return h("article", { class: "turn", dataset: { turn: turn.id } },
      h("h3", { class: "person" }, h("span", { class: "who" }, "You: "), turn.message),
      h("div", { class: "tree" }, renderNode(tree.top, tree, pending, 0)),
      tree.final && tree.final.content && ["completed", "incomplete"].includes(tree.final.status) ? h("div", { class: "answer-box" }, h("span", { class: "who" }, `${thread.assistant}: `), tree.final.content) : null,
      timeline);
  });
  $("turns").replaceChildren(...turns);
  const waiting = thread.pending.length > 0;
  $("pending-bar").hidden = !waiting;
  $("pending-count").textContent = waiting ? `${thread.pending.length} request(s) waiting for you: answer one or several, then send.` : "";
  $("failure-bar").hidden = thread.status !== "failed";
  const composer = $("composer-message");
  const canSend = thread.status === "done" || thread.status === "incomplete";
  composer.disabled = !canSend;
  $("composer-send").disabled = !canSend;
  $("composer-hint").textContent = canSend ? "" : {
    running: "A run is in progress.",
    waiting: "Answer the pending requests first.",
    failed: "Continue the failed run first.",
  }[thread.status] || "";
  restoreFocus(focus);
}

function rememberFocus() {
  const active = document.activeElement;
  return active && active.dataset && active.dataset.focusKey ? active.dataset.focusKey : null;
}

function restoreFocus(key) {
  if (!key) return;
  const element = document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
  if (element) element.focus();
}

function queueRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(renderThread);
}

function openThread(threadId) {
  if (state.source) state.source.close();
  state.threadId = threadId;
  state.thread = null;
  if (location.hash !== `#thread=${threadId}`) history.replaceState(null, "", `#thread=${threadId}`);
  renderThreads();
  const source = new EventSource(`api/threads/${encodeURIComponent(threadId)}/stream`);
  state.source = source;
  source.addEventListener("snapshot", (message) => {
    state.thread = JSON.parse(message.data); // its "seq": the last event it includes
    $("connection").textContent = "";
    queueRender();
    refreshThreads();
  });
  source.addEventListener("event", (message) => {
    const record = JSON.parse(message.data);
    const thread = state.thread;
    if (!thread || record.seq <= thread.seq) return; // already in the snapshot
    thread.seq = record.seq;
    let turn = thread.turns.find((candidate) => candidate.id === record.turn);
    if (!turn) {
      turn = { id: record.turn, message: record.event.message || "", recorded: true, records: [] };
      thread.turns.push(turn);
    }
    if (record.event.type === "run_start") {
      thread.status = "running";
      thread.pending = [];
    }
    turn.records.push({ ts: record.ts, event: record.event });
    queueRender();
  });
  source.onerror = () => {
    $("connection").textContent = source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…";
  };
  $("thread").focus();
}

async function sendAnswers() {
  const pending = (state.thread && state.thread.pending) || [];
  const answers = {};
  for (const request of pending) {
    const answer = state.answers.get(request.id);
    if (!answer) continue;
    if (request.kind === "approval" && answer.approved) {
      answers[request.id] = { approved: answer.approved, ...(answer.reason ? { reason: answer.reason } : {}) };
    } else if (request.kind !== "approval" && answer.text && answer.text.trim()) {
      answers[request.id] = answer.text;
    }
  }
  if (!Object.keys(answers).length) {
    showAlert("Answer at least one request (type an answer, or choose Approve or Reject).");
    return;
  }
  const done = await act(api(`api/threads/${encodeURIComponent(state.threadId)}/answers`, { answers }));
  if (done) for (const id of Object.keys(answers)) state.answers.delete(id);
}

// The thread list --------------------------------------------------------------------------

function renderThreads() {
  const items = state.threads.map((thread) => h(
    "li",
    {},
    h("button", {
      type: "button",
      class: `thread-item ${thread.thread_id === state.threadId ? "current" : ""}`,
      "aria-current": thread.thread_id === state.threadId ? "true" : null,
      dataset: { thread: thread.thread_id },
      onclick: () => openThread(thread.thread_id),
    },
    h("span", { class: "thread-line" }, h("span", { class: "thread-assistant" }, thread.assistant || "?"), badge(thread.status)),
    h("span", { class: "thread-preview" }, thread.last_message || "(no message yet)"),
    h("span", { class: "thread-meta" }, thread.thread_id, thread.updated ? ` · ${new Date(thread.updated).toLocaleString()}` : "")),
  ));
  $("thread-list").replaceChildren(...items);
}

async function refreshThreads() {
  const data = await api("api/threads").catch(() => null);
  if (!data) return;
  state.threads = data.threads;
  renderThreads();
}

// Starting -------------------------------------------------------------------------------

async function startThread(assistant, message) {
  const data = await act(api("api/threads", { assistant, message }));
  if (!data) return;
  $("new-message").value = "";
  await refreshThreads();
  openThread(data.thread_id);
}

function setUp() {
  $("new-thread").addEventListener("submit", (event) => {
    event.preventDefault();
    startThread($("new-assistant").value, $("new-message").value);
  });
  $("new-message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("new-thread").requestSubmit();
    }
  });
  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = $("composer-message").value;
    const done = await act(api(`api/threads/${encodeURIComponent(state.threadId)}/messages`, { message }));
    if (done) $("composer-message").value = "";
  });
  $("composer-message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("send-answers").addEventListener("click", sendAnswers);
  $("retry").addEventListener("click", () => act(api(`api/threads/${encodeURIComponent(state.threadId)}/retry`, {})));
  $("transcript-close").addEventListener("click", () => $("transcript").close());
}

async function openTranscript(uid) {
  const data = await act(api(`api/threads/${encodeURIComponent(state.threadId)}/conversations/${encodeURIComponent(uid)}`));
  if (!data) return;
  $("transcript-title").textContent = `Sub-conversation ${data.uid} with ${data.assistant}`;
  const messages = data.messages.map((message) => h(
    "li",
    { class: `message role-${message.role}` },
    h("span", { class: "role" }, message.role === "tool" ? `tool ${message.name} (${message.tool_call_id})` : message.role),
    message.text ? h("pre", {}, message.text) : null,
    (message.tool_calls || []).map((call) => h("code", { class: "call" }, `${call.name}(${argsText(call.args)}) [${call.id}]`)),
  ));
  $("transcript-body").replaceChildren(
    data.summary ? h("p", { class: "summary" }, `Summary: ${data.summary}`) : "",
    h("ol", { class: "transcript" }, messages),
  );
  $("transcript").showModal();
}

async function load() {
  setUp();
  const config = await act(api("api/config"));
  if (config) state.config = config;
  $("demo-badge").hidden = !state.config.demo;
  const select = $("new-assistant");
  const assistants = state.config.assistants;
  const first = assistants.find((assistant) => !assistant.callable) || assistants[0];
  select.replaceChildren(...assistants.map((assistant) => h("option", {
    value: assistant.name,
    selected: first && assistant.name === first.name,
    title: assistant.description,
  }, assistant.name)));
  if (state.config.suggestions.length) {
    $("suggestions").hidden = false;
    $("suggestion-list").replaceChildren(...state.config.suggestions.map((text) => h("li", {},
      h("button", { type: "button", class: "suggestion", onclick: () => startThread(select.value, text) }, text))));
  }
  await refreshThreads();
  const match = /^#thread=(.+)$/.exec(location.hash);
  if (match) openThread(decodeURIComponent(match[1]));
  setInterval(() => { if (!document.hidden) refreshThreads(); }, LIST_REFRESH_MS);
  setInterval(() => { if (state.thread && state.thread.status === "running") queueRender(); }, 1000);
}

load();
