// The dashboard page: reads through the JSON API, listens to the inspection hub's frames over a
// WebSocket for live changes, and acts (cancel, retry) with POSTs that carry the header the
// server requires. Data is only ever written with textContent.
'use strict';
(function () {
  const { el, api, post, say, debounce, list, detail } = window.promised;
  const { stateChart, lineChart } = window.promisedCharts;
  const $ = (id) => document.getElementById(id);
  const STATUSES = ['waiting', 'pending', 'in_progress', 'completed', 'failed'];
  const state = { statsHistory: [], definitions: new Map(), workflows: new Map() };

  // ---- stats ----

  async function refreshStats() {
    const stats = await api('stats');
    const counters = $('counters');
    counters.replaceChildren();
    for (const status of STATUSES) {
      const counter = el('button', 'counter ' + status);
      counter.type = 'button';
      counter.dataset.status = status;
      counter.appendChild(el('span', 'count', stats[status]));
      counter.appendChild(el('span', 'label', status.replace('_', ' ')));
      counter.addEventListener('click', () => list.filterStatus(status));
      counters.appendChild(counter);
    }
    const dead = el('span', 'counter dead', '');
    dead.appendChild(el('span', 'count', stats.deadLetters));
    dead.appendChild(el('span', 'label', 'dead letters'));
    counters.appendChild(dead);
    state.statsHistory.push(stats);
    if (state.statsHistory.length > 90) state.statsHistory.shift();
    lineChart($('stats-chart'), $('stats-legend'), state.statsHistory, [
      { key: 'pending', label: 'pending' },
      { key: 'in_progress', label: 'running' },
      { key: 'waiting', label: 'waiting' },
      { key: 'failed', label: 'failed' },
      { key: 'deadLetters', label: 'dead letters' },
    ]);
  }

  async function retryDeadLetters() {
    try {
      const outcome = await post('dead-letters/retry-all');
      say('retried ' + outcome.retried.length + ' dead letter(s)' + (outcome.skipped.length ? ', skipped ' + outcome.skipped.length : ''));
    } catch (error) {
      say(error.message, true);
    }
    refreshAllSoon();
  }

  // ---- workflows ----

  async function refreshWorkflows() {
    const workflows = await api('workflows');
    const list = $('workflow-list');
    const shown = workflows.slice(0, 12);
    const keep = new Set(shown.map((w) => w.id));
    for (const card of [...list.children]) if (!keep.has(card.dataset.workflowId)) card.remove();
    for (const workflow of shown) {
      if (!state.definitions.has(workflow.name)) {
        const full = await api('workflows/' + encodeURIComponent(workflow.id));
        state.definitions.set(workflow.name, full.definition ? JSON.parse(full.definition) : null);
      }
      state.workflows.set(workflow.id, workflow);
      drawWorkflow(workflow);
    }
    // Newest first, as listed.
    for (const workflow of shown) list.appendChild(list.querySelector('[data-workflow-id="' + CSS.escape(workflow.id) + '"]'));
    if (shown.length === 0 && !list.querySelector('.empty')) list.appendChild(el('p', 'empty', 'no workflows'));
    else if (shown.length) for (const empty of list.querySelectorAll('.empty')) empty.remove();
  }
  const refreshWorkflowsSoon = debounce(refreshWorkflows, 150);

  function drawWorkflow(workflow) {
    const list = $('workflow-list');
    let card = list.querySelector('[data-workflow-id="' + CSS.escape(workflow.id) + '"]');
    if (!card) {
      card = el('article', 'workflow');
      card.dataset.workflowId = workflow.id;
      const title = el('h3');
      title.appendChild(el('span', 'workflow-name'));
      title.appendChild(el('span', 'workflow-status'));
      card.appendChild(title);
      const current = el('p', 'current');
      current.appendChild(el('span', 'label', 'current state: '));
      current.appendChild(el('code', 'current-state'));
      card.appendChild(current);
      card.appendChild(el('div', 'chart'));
      list.appendChild(card);
    }
    card.querySelector('.workflow-name').textContent = workflow.name + ' #' + workflow.id;
    const status = card.querySelector('.workflow-status');
    status.textContent = workflow.status + (workflow.error ? ' (' + workflow.error.code + ')' : '');
    status.className = 'workflow-status ' + workflow.status;
    card.querySelector('.current-state').textContent = typeof workflow.value === 'string' ? workflow.value : JSON.stringify(workflow.value);
    const definition = state.definitions.get(workflow.name);
    const chart = card.querySelector('.chart');
    if (definition) stateChart(chart, definition, workflow.value, workflow.status);
    else chart.textContent = 'machine not registered in this process (start the dashboard with --tasks to draw it)';
  }

  // ---- live ----

  function onFrame(frame) {
    const match = /:(promise|workflow):(.+)$/.exec(frame.sessionId || '');
    if (!match) return;
    const [, kind, id] = match;
    if (kind === 'workflow') {
      const known = state.workflows.get(id);
      if (!known || frame.type === '@xstate.event') return void (known || refreshWorkflowsSoon());
      const snapshot = frame.snapshot || {};
      const status = snapshot.status === 'done' ? 'completed' : snapshot.status === 'error' ? 'failed' : 'running';
      const updated = { ...known, value: snapshot.value, context: snapshot.context, status, error: snapshot.error || known.error };
      state.workflows.set(id, updated);
      drawWorkflow(updated);
      return;
    }
    if (frame.type === '@xstate.event') return;
    list.refreshSoon();
    refreshStatsSoon();
    if (id === detail.selected) detail.refreshSoon();
  }
  const refreshStatsSoon = debounce(refreshStats, 500);

  function connect(delay) {
    const socket = new WebSocket(new URL('inspect', location.href).href.replace(/^http/, 'ws'));
    socket.onopen = () => {
      delay = 500;
      $('live').textContent = 'live';
      $('live').className = 'live on';
      refreshAllSoon();
    };
    socket.onmessage = (event) => {
      try {
        onFrame(JSON.parse(event.data));
      } catch (error) {
        say(error.message, true);
      }
    };
    socket.onclose = () => {
      $('live').textContent = 'reconnecting…';
      $('live').className = 'live off';
      setTimeout(() => connect(Math.min(delay * 2, 10_000)), delay);
    };
  }

  const refreshAllSoon = debounce(async () => {
    await Promise.all([refreshStats(), list.refresh(), refreshWorkflows()]);
    detail.refreshSoon();
  }, 100);

  list.onSelect = (id) => detail.select(id).catch((error) => say(error.message, true));
  list.onChanged = () => refreshAllSoon();
  detail.onChanged = () => refreshAllSoon();
  $('retry-dead-letters').addEventListener('click', retryDeadLetters);
  // Stats over time, and what the hub cannot announce (progress of other processes).
  // stats() counts every row by type and status: over a large table that takes a while, so
  // the page asks again only after several times as long as the last answer took.
  (function pollStats() {
    const started = performance.now();
    refreshStats()
      .catch(() => undefined)
      .finally(() => setTimeout(pollStats, Math.max(2_000, 5 * (performance.now() - started))));
  })();
  setInterval(() => list.refreshSoon(), 5_000);
  refreshAllSoon();
  connect(500);
})();
