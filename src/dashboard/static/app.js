// The dashboard page: reads through the JSON API, listens to the inspection hub's frames over a
// WebSocket for live changes, and acts (cancel, retry) with POSTs that carry the header the
// server requires. Data is only ever written with textContent.
'use strict';
(function () {
  const { el, api, post, say, debounce, list, detail, workflows, schedules } = window.promised;
  const { addStats } = window.promisedCharts;
  const $ = (id) => document.getElementById(id);
  const STATUSES = ['waiting', 'pending', 'in_progress', 'completed', 'failed'];

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
    addStats($('stats-chart'), stats, 300);
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

  // ---- live ----

  function onFrame(frame) {
    const match = /:(promise|workflow):(.+)$/.exec(frame.sessionId || '');
    if (!match) return;
    const [, kind, id] = match;
    if (kind === 'workflow') {
      // A workflow not shown yet (just started) brings the list up to date.
      if (frame.type === '@xstate.event' || !workflows.onSnapshot(id, frame.snapshot || {})) workflows.refreshSoon();
      return;
    }
    if (frame.type === '@xstate.event') return;
    list.refreshSoon();
    schedules.refreshSoon();
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
    await Promise.all([refreshStats(), list.refresh(), workflows.refresh(), schedules.refresh()]);
    detail.refreshSoon();
  }, 100);

  list.onSelect = (id) => detail.select(id).catch((error) => say(error.message, true));
  list.onChanged = () => refreshAllSoon();
  detail.onChanged = () => refreshAllSoon();
  workflows.onChanged = () => refreshAllSoon();
  schedules.onChanged = () => refreshAllSoon();
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
  // Next runs count down, and other processes pause types: read again now and then.
  setInterval(() => schedules.refreshSoon(), 5_000);
  refreshAllSoon();
  connect(500);
})();
