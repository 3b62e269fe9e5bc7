// The promise list: filters and pages are the server's (keyset cursors, `next` of each answer);
// the page keeps the cursors it came through so Newer goes back. Rows carry their actions.
'use strict';
(function () {
  const { el, api, post, say, debounce, duration, when } = window.promised;
  const $ = (id) => document.getElementById(id);
  const COLUMNS = 10;
  const MAX_READS = 10;
  const list = { cursors: [], next: null, onSelect: () => undefined, onChanged: () => undefined, selected: null };

  function query(before, limit) {
    const params = new URLSearchParams();
    const set = (name, id) => $(id).value.trim() && params.set(name, $(id).value.trim());
    set('status', 'filter-status');
    set('type', 'filter-type');
    set('error', 'filter-error');
    set('q', 'filter-search');
    params.set('limit', String(limit));
    if (before) params.set('before', before);
    return params;
  }

  /**
   * A page of the list: a filtered answer reads a bounded range of ids and may come back short
   * with a cursor; up to MAX_READS answers are joined to fill the page, each one fast.
   */
  async function readPage() {
    const limit = Number($('page-size').value);
    const promises = [];
    let next = list.cursors[list.cursors.length - 1] || null;
    for (let read = 0; read < MAX_READS && promises.length < limit; read++) {
      const page = await api('promises?' + query(next, limit - promises.length));
      promises.push(...page.promises);
      next = page.next;
      if (!next) break;
    }
    return { promises, next };
  }

  async function refresh() {
    const search = $('filter-search').value.trim();
    // "#123" (or a bare id) opens that promise.
    if (/^#\d+$/.test(search)) list.onSelect(search.slice(1));
    const page = await readPage();
    list.next = page.next;
    const body = $('promise-table').tBodies[0];
    body.replaceChildren(...page.promises.map(row));
    if (page.promises.length === 0) {
      const empty = el('tr', 'empty');
      const cell = el('td', '', page.next ? 'none among these ids: Older searches further' : 'no promises match');
      cell.colSpan = COLUMNS;
      empty.appendChild(cell);
      body.appendChild(empty);
    }
    const first = page.promises[0], last = page.promises[page.promises.length - 1];
    $('page-info').textContent = first ? '#' + first.id + ' … #' + last.id + (list.cursors.length ? ' (page ' + (list.cursors.length + 1) + ')' : '') : '';
    $('page-newer').disabled = list.cursors.length === 0;
    $('page-older').disabled = !page.next;
  }
  const refreshSoon = debounce(refresh, 120);

  function restart() {
    list.cursors = [];
    refreshSoon();
  }

  function row(record) {
    const tr = el('tr');
    tr.dataset.id = record.id;
    if (record.id === list.selected) tr.classList.add('selected');
    tr.appendChild(el('td', 'id', record.id));
    tr.appendChild(el('td', 'type', record.type));
    tr.appendChild(el('td', 'status ' + record.status, record.status));
    tr.appendChild(el('td', 'attempts', record.attempts + '/' + record.maxAttempts));
    const error = el('td', 'error');
    if (record.error) {
      error.appendChild(el('code', 'error-code', record.error.code));
      const message = el('span', 'error-message', record.error.message);
      message.title = record.error.message;
      error.appendChild(message);
    }
    tr.appendChild(error);
    tr.appendChild(el('td', 'created', when(record.createdAt)));
    tr.appendChild(el('td', 'started', when(record.startedAt)));
    const end = record.completedAt ? Date.parse(record.completedAt) : record.status === 'in_progress' ? Date.now() : null;
    tr.appendChild(el('td', 'duration', record.startedAt && end ? duration(end - Date.parse(record.startedAt)) : ''));
    tr.appendChild(el('td', 'progress', record.progress ? record.progress.current + '/' + record.progress.total : ''));
    const actions = el('td', 'actions');
    if (record.status === 'waiting' || record.status === 'pending' || record.status === 'in_progress') actions.appendChild(actionButton('Cancel', 'cancel', record.id));
    if (record.status === 'failed') actions.appendChild(actionButton('Retry', 'retry', record.id));
    tr.appendChild(actions);
    tr.addEventListener('click', (event) => {
      if (!event.target.closest('button')) list.onSelect(record.id);
    });
    return tr;
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
      list.onChanged();
    });
    return button;
  }

  function markSelected(id) {
    list.selected = id;
    for (const tr of $('promise-table').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.id === id);
  }

  for (const id of ['filter-status', 'page-size']) $(id).addEventListener('change', restart);
  for (const id of ['filter-type', 'filter-error', 'filter-search']) $(id).addEventListener('input', restart);
  $('page-older').addEventListener('click', () => {
    if (!list.next) return;
    list.cursors.push(list.next);
    refreshSoon();
  });
  $('page-newer').addEventListener('click', () => {
    list.cursors.pop();
    refreshSoon();
  });

  window.promised.list = {
    refresh,
    refreshSoon,
    markSelected,
    filterStatus(status) {
      $('filter-status').value = status;
      restart();
    },
    /** Live changes re-read the page shown: the newest page follows them, an older one stays put. */
    set onSelect(callback) {
      list.onSelect = callback;
    },
    set onChanged(callback) {
      list.onChanged = callback;
    },
  };
})();
