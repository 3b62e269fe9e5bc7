// Workflow cards: each recent workflow's state chart (live over the socket), what it can be sent
// now (only the events its current state accepts), cancel / pause / resume, its kept events,
// and time travel: a scrubber over its stored history showing the chart and context at each step.
'use strict';
(function () {
  const { el, api, post, say, debounce } = window.promised;
  const $ = (id) => document.getElementById(id);
  const SHOWN = 12;
  const cards = new Map(); // id -> { workflow, detail, history, at (seq shown, null: now), refresh }
  const definitions = new Map();
  const changed = { callback: () => undefined };

  async function refresh() {
    const params = new URLSearchParams();
    if ($('workflow-status').value) params.set('status', $('workflow-status').value);
    if ($('workflow-awaiting').value.trim()) params.set('awaiting', $('workflow-awaiting').value.trim());
    const shown = (await api('workflows?' + params)).slice(0, SHOWN);
    const list = $('workflow-list');
    const keep = new Set(shown.map((w) => w.id));
    for (const [id, card] of cards) if (!keep.has(id)) (card.node.remove(), cards.delete(id));
    for (const workflow of shown) {
      if (!definitions.has(workflow.name)) {
        const full = await api('workflows/' + encodeURIComponent(workflow.id));
        definitions.set(workflow.name, full.definition ? JSON.parse(full.definition) : null);
      }
      const card = cardOf(workflow);
      card.workflow = { ...card.workflow, ...workflow };
      draw(card);
      card.refresh();
      list.appendChild(card.node);
    }
    list.querySelector('.empty')?.remove();
    if (shown.length === 0) list.appendChild(el('p', 'empty', 'no workflows match'));
  }

  function cardOf(workflow) {
    if (cards.has(workflow.id)) return cards.get(workflow.id);
    const node = el('article', 'workflow');
    node.dataset.workflowId = workflow.id;
    const title = el('h3');
    title.append(el('span', 'workflow-name', workflow.name + ' #' + workflow.id), el('span', 'workflow-status'), el('span', 'workflow-paused'));
    const current = el('p', 'current');
    current.append(el('span', 'label', 'current state: '), el('code', 'current-state'));
    const actions = el('div', 'workflow-actions');
    const events = el('select', 'send-event');
    events.setAttribute('aria-label', 'event to send');
    const payload = el('input', 'send-payload');
    payload.placeholder = '{ "by": "ada" } (optional)';
    payload.setAttribute('aria-label', 'event fields as JSON');
    actions.append(events, payload, button('Send', 'send'), button('Pause', 'pause'), button('Resume', 'resume'), button('Cancel', 'cancel'));
    const travel = el('div', 'time-travel');
    const scrubber = el('input', 'scrubber');
    scrubber.type = 'range';
    scrubber.min = '1';
    scrubber.setAttribute('aria-label', 'step through the history');
    travel.append(el('span', 'label', 'history: '), scrubber, el('span', 'step'), button('Now', 'now'));
    const context = el('pre', 'context');
    // Finished workflows start folded: twelve charts drawn in full bury the one that matters.
    const fold = el('details', 'fold');
    fold.open = workflow.status === 'running';
    fold.append(el('summary', '', 'state chart, history and context'), travel, el('div', 'chart'), context);
    node.append(title, current, actions, el('ul', 'kept-events'), fold);
    const card = { node, workflow, detail: null, history: [], at: null };
    card.refresh = debounce(() => refreshCard(card), 150);
    for (const control of node.querySelectorAll('button')) control.addEventListener('click', () => act(card, control.dataset.action));
    scrubber.addEventListener('input', () => travelTo(card, Number(scrubber.value)).catch((error) => say(error.message, true)));
    cards.set(workflow.id, card);
    return card;
  }

  function button(label, action) {
    const node = el('button', 'action ' + action, label);
    node.type = 'button';
    node.dataset.action = action;
    return node;
  }

  /** What the card shows besides the chart: what it accepts, whether paused, kept events, history. */
  async function refreshCard(card) {
    const path = 'workflows/' + encodeURIComponent(card.workflow.id);
    const [detail, history] = await Promise.all([api(path), api(path + '/history')]);
    card.detail = detail;
    card.history = history;
    card.workflow = { ...card.workflow, value: detail.value, context: detail.context, status: detail.status, error: detail.error };
    const events = card.node.querySelector('.send-event');
    const concrete = detail.accepts.filter((type) => !type.includes('*'));
    if (events.dataset.offered !== concrete.join(',')) {
      events.replaceChildren(...concrete.map((type) => Object.assign(el('option', '', type), { value: type })));
      events.dataset.offered = concrete.join(',');
    }
    const running = detail.status === 'running';
    events.disabled = concrete.length === 0;
    card.node.querySelector('.action.send').disabled = concrete.length === 0;
    card.node.querySelector('.action.pause').hidden = !running || detail.pausedAt !== null;
    card.node.querySelector('.action.resume').hidden = !running || detail.pausedAt === null;
    card.node.querySelector('.action.cancel').hidden = !running;
    card.node.querySelector('.workflow-paused').textContent = detail.pausedAt ? 'paused' : '';
    const kept = card.node.querySelector('.kept-events');
    kept.replaceChildren(
      ...detail.keptEvents.map((entry) => {
        const item = el('li', '', 'kept: ' + entry.event.type + ' until ' + new Date(entry.expiresAt).toLocaleTimeString() + ' ');
        item.dataset.eventId = entry.id;
        const discard = el('button', 'action discard', 'Discard');
        discard.type = 'button';
        discard.addEventListener('click', () => discardEvent(card, entry.id));
        item.appendChild(discard);
        return item;
      }),
    );
    const scrubber = card.node.querySelector('.scrubber');
    scrubber.max = String(Math.max(1, history.length));
    if (card.at === null) scrubber.value = scrubber.max;
    draw(card);
  }

  async function act(card, action) {
    const id = card.workflow.id;
    if (action === 'now') {
      card.at = null;
      card.node.querySelector('.scrubber').value = card.node.querySelector('.scrubber').max;
      return draw(card);
    }
    let body = {};
    if (action === 'send') {
      let fields = {};
      const text = card.node.querySelector('.send-payload').value.trim();
      try {
        if (text) fields = JSON.parse(text);
      } catch (error) {
        return say('the event fields are not JSON: ' + error.message, true);
      }
      body = { event: { ...fields, type: card.node.querySelector('.send-event').value } };
    }
    try {
      const answer = await post('workflows/' + encodeURIComponent(id) + '/' + action, body);
      say(action + ' #' + id + (answer.outcome ? ': ' + answer.outcome : ': done'));
    } catch (error) {
      say(action + ' #' + id + ': ' + error.message, true);
    }
    card.refresh();
    changed.callback();
  }

  async function discardEvent(card, eventId) {
    try {
      const answer = await post('workflows/' + encodeURIComponent(card.workflow.id) + '/events/' + encodeURIComponent(eventId) + '/discard');
      say(answer.discarded ? 'kept event discarded' : 'that event is not kept any more');
    } catch (error) {
      say('Discard: ' + error.message, true);
    }
    card.refresh();
  }

  async function travelTo(card, seq) {
    const step = await api('workflows/' + encodeURIComponent(card.workflow.id) + '/history/' + seq);
    card.at = step;
    draw(card);
  }

  function draw(card) {
    const { workflow, at } = card;
    const shown = at ? { value: at.to, status: at.status, context: at.context } : workflow;
    card.node.querySelector('.workflow-status').textContent = workflow.status + (workflow.error ? ' (' + workflow.error.code + ')' : '');
    card.node.querySelector('.workflow-status').className = 'workflow-status ' + workflow.status;
    card.node.querySelector('.current-state').textContent = typeof workflow.value === 'string' ? workflow.value : JSON.stringify(workflow.value);
    card.node.querySelector('.step').textContent = at ? 'step ' + at.seq + ' of ' + card.history.length + ': ' + at.event + ' at ' + new Date(at.at).toLocaleTimeString() : card.history.length ? 'now (' + card.history.length + ' steps)' : '';
    card.node.classList.toggle('travelling', Boolean(at));
    if (workflow.status !== 'running') {
      // Finished (a snapshot frame said so): no action is left, before the card is re-read.
      for (const action of ['pause', 'resume', 'cancel']) card.node.querySelector('.action.' + action).hidden = true;
      card.node.querySelector('.action.send').disabled = true;
    }
    card.node.querySelector('.context').textContent = 'context' + (at ? ' at step ' + at.seq : '') + ': ' + JSON.stringify(shown.context === undefined ? null : shown.context, null, 2);
    const definition = definitions.get(workflow.name);
    const chart = card.node.querySelector('.chart');
    const taken = card.history.filter((line) => !at || line.seq <= at.seq);
    if (definition) window.promisedCharts.stateChart(chart, definition, shown.value, shown.status, taken);
    else chart.textContent = 'machine not registered in this process (start the dashboard with --tasks to draw it)';
  }

  /** A snapshot frame from the socket: the card follows it at once, then re-reads what it accepts. */
  function onSnapshot(id, snapshot) {
    const card = cards.get(id);
    if (!card) return false;
    const status = snapshot.status === 'done' ? 'completed' : snapshot.status === 'error' ? 'failed' : 'running';
    card.workflow = { ...card.workflow, value: snapshot.value, context: snapshot.context, status };
    draw(card);
    card.refresh();
    return true;
  }

  $('workflow-status').addEventListener('change', () => refreshSoon());
  $('workflow-awaiting').addEventListener('input', () => refreshSoon());
  const refreshSoon = debounce(refresh, 150);

  window.promised.workflows = {
    refresh,
    refreshSoon,
    onSnapshot,
    set onChanged(callback) {
      changed.callback = callback;
    },
  };
})();
