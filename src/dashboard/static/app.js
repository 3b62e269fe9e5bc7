// The dashboard page: reads through the JSON API, listens to the inspection hub's frames over a
// WebSocket for live changes, and acts (cancel, retry) with POSTs that carry the header the
// server requires. Data is only ever written with textContent.
'use strict';
(function () {
  const { el, stateChart, dependencyGraph, lineChart } = window.promisedCharts;
  const $ = (id) => document.getElementById(id);
  const STATUSES = ['waiting', 'pending', 'in_progress', 'completed', 'failed'];
  const state = { selected: null, statsHistory: [], definitions: new Map(), workflows: new Map() };

  async function api(path) {
    const response = await fetch('api/' + path, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
    const body = await response.json();
    if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
    return body;
  }

  async function post(path) {
    const response = await fetch('api/' + path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-requested-with': 'promised', accept: 'application/json' },
      body: '{}',
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((body.error && (body.error.code + ': ' + body.error.message)) || response.statusText);
    return body;
  }

  function say(text, isError) {
    const message = $('message');
    message.textContent = text;
    message.className = 'message' + (isError ? ' error' : '');
  }

  function debounce(work, ms) {
    let timer = null;
    return () => {
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        work().catch((error) => say(error.message, true));
      }, ms);
    };
  }

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
      counter.addEventListener('click', () => {
        $('filter-status').value = status;
        refreshPromisesSoon();
      });
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

  // ---- promises ----

  async function refreshPromises() {
    const query = new URLSearchParams();
    if ($('filter-status').value) query.set('status', $('filter-status').value);
    if ($('filter-type').value.trim()) query.set('type', $('filter-type').value.trim());
    if ($('filter-search').value.trim()) query.set('q', $('filter-search').value.trim());
    const records = await api('promises?' + query);
    const body = $('promise-table').tBodies[0];
    body.replaceChildren();
    for (const record of records) body.appendChild(promiseRow(record));
    if (records.length === 0) {
      const row = el('tr', 'empty');
      const cell = el('td', '', 'no promises match');
      cell.colSpan = 7;
      row.appendChild(cell);
      body.appendChild(row);
    }
  }
  const refreshPromisesSoon = debounce(refreshPromises, 120);

  function promiseRow(record) {
    const row = el('tr');
    row.dataset.id = record.id;
    if (record.id === state.selected) row.classList.add('selected');
    row.appendChild(el('td', 'id', record.id));
    row.appendChild(el('td', 'type', record.type));
    row.appendChild(el('td', 'status ' + record.status, record.status));
    row.appendChild(el('td', 'attempts', record.attempts + '/' + record.maxAttempts));
    row.appendChild(el('td', 'error', record.error ? record.error.code : ''));
    row.appendChild(el('td', 'progress', record.progress ? record.progress.current + '/' + record.progress.total : ''));
    const actions = el('td', 'actions');
    if (record.status === 'waiting' || record.status === 'pending' || record.status === 'in_progress') actions.appendChild(actionButton('Cancel', 'cancel', record.id));
    if (record.status === 'failed') actions.appendChild(actionButton('Retry', 'retry', record.id));
    row.appendChild(actions);
    row.addEventListener('click', (event) => {
      if (event.target.closest('button')) return;
      select(record.id);
    });
    return row;
  }

  function actionButton(label, action, id) {
    const button = el('button', 'action ' + action, label);
    button.type = 'button';
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await post('promises/' + encodeURIComponent(id) + '/' + action);
        say(label + ' #' + id + ': done');
      } catch (error) {
        say(label + ' #' + id + ': ' + error.message, true);
      }
      refreshAllSoon();
    });
    return button;
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

  // ---- detail ----

  async function select(id) {
    state.selected = id;
    for (const row of $('promise-table').tBodies[0].rows) row.classList.toggle('selected', row.dataset.id === id);
    await refreshDetail();
  }

  async function refreshDetail() {
    const id = state.selected;
    if (id === null) return;
    const [detail, graph] = await Promise.all([api('promises/' + encodeURIComponent(id)), api('promises/' + encodeURIComponent(id) + '/graph')]);
    if (state.selected !== id) return;
    const { record, history } = detail;
    $('detail').hidden = false;
    $('detail-id').textContent = '#' + record.id;
    const fields = $('detail-fields');
    fields.replaceChildren();
    const field = (name, value, pre) => {
      fields.appendChild(el('dt', '', name));
      const dd = el('dd', 'field-' + name);
      if (pre) dd.appendChild(el('pre', '', value === undefined ? '' : JSON.stringify(value, null, 2)));
      else dd.textContent = value === null || value === undefined ? '—' : String(value);
      fields.appendChild(dd);
    };
    field('type', record.type);
    field('status', record.status);
    field('attempts', record.attempts + ' of ' + record.maxAttempts);
    field('priority', record.priority);
    field('progress', record.progress ? record.progress.current + ' / ' + record.progress.total : null);
    field('payload', record.payload, true);
    field('result', record.result, true);
    field('error', record.error, true);
    field('dependsOn', record.dependsOn.join(', ') || null);
    field('created', record.createdAt);
    field('started', record.startedAt);
    field('finished', record.completedAt);
    const list = $('detail-history');
    list.replaceChildren();
    for (const line of history) {
      const item = el('li', '', new Date(line.at).toLocaleTimeString() + '  ' + line.event + ': ' + (line.from || '∅') + ' → ' + line.to + (line.error ? '  (' + line.error.code + ': ' + line.error.message + ')' : ''));
      list.appendChild(item);
    }
    dependencyGraph($('detail-graph'), graph, record.id, (other) => select(other));
  }
  const refreshDetailSoon = debounce(refreshDetail, 150);

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
    refreshPromisesSoon();
    refreshStatsSoon();
    if (id === state.selected) refreshDetailSoon();
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
    await Promise.all([refreshStats(), refreshPromises(), refreshWorkflows(), state.selected === null ? null : refreshDetail()]);
  }, 100);

  $('filter-status').addEventListener('change', refreshPromisesSoon);
  $('filter-type').addEventListener('input', refreshPromisesSoon);
  $('filter-search').addEventListener('input', refreshPromisesSoon);
  $('retry-dead-letters').addEventListener('click', retryDeadLetters);
  $('detail-close').addEventListener('click', () => {
    state.selected = null;
    $('detail').hidden = true;
  });
  // Stats over time, and what the hub cannot announce (progress of other processes).
  setInterval(() => refreshStats().catch(() => undefined), 2_000);
  setInterval(() => refreshPromisesSoon(), 5_000);
  refreshAllSoon();
  connect(500);
})();
