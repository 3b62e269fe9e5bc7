// One promise in full: its fields, what it is linked to both ways (dependencies and dependents,
// the promise it follows up and its follow-ups), its history, its dependency graph, and for a
// failed one a retry with an edited payload.
'use strict';
(function () {
  const { el, api, post, say, debounce, duration, when } = window.promised;
  const $ = (id) => document.getElementById(id);
  const detail = { selected: null, onChanged: () => undefined };

  async function select(id) {
    detail.selected = id;
    window.promised.list.markSelected(id);
    await refresh();
  }

  async function refresh() {
    const id = detail.selected;
    if (id === null) return;
    const path = 'promises/' + encodeURIComponent(id);
    const [answer, graph] = await Promise.all([api(path), api(path + '/graph')]);
    if (detail.selected !== id) return;
    const { record, history, relations } = answer;
    $('detail').hidden = false;
    $('detail-id').textContent = '#' + record.id;
    const fields = $('detail-fields');
    fields.replaceChildren();
    const field = (name, value, pre) => {
      fields.appendChild(el('dt', '', name));
      const dd = el('dd', 'field-' + name);
      if (pre) dd.appendChild(el('pre', '', value === undefined ? '' : JSON.stringify(value, null, 2)));
      else if (value instanceof Node) dd.appendChild(value);
      else dd.textContent = value === null || value === undefined || value === '' ? '—' : String(value);
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
    field('created', when(record.createdAt));
    field('started', when(record.startedAt));
    field('finished', when(record.completedAt));
    field('duration', record.startedAt && record.completedAt ? duration(Date.parse(record.completedAt) - Date.parse(record.startedAt)) : null);
    field('depends-on', links(relations.dependsOn));
    field('dependents', links(relations.dependents));
    field('follows', links(relations.follows ? [relations.follows] : []));
    field('follow-ups', links(relations.followUps.map((other) => other.id)));
    const list = $('detail-history');
    list.replaceChildren(...history.map((line) => el('li', '', new Date(line.at).toLocaleTimeString() + '  ' + line.event + ': ' + (line.from || '∅') + ' → ' + line.to + (line.error ? '  (' + line.error.code + ': ' + line.error.message + ')' : ''))));
    window.promisedCharts.dependencyGraph($('detail-graph'), graph, record.id, (other) => select(other));
    const retry = $('detail-retry');
    retry.hidden = record.status !== 'failed';
    if (record.status === 'failed' && retry.dataset.id !== record.id) {
      retry.dataset.id = record.id;
      $('retry-payload').value = JSON.stringify(record.payload, null, 2);
    }
  }

  /** Links that open another promise here, or nothing to show. */
  function links(ids) {
    if (!ids || ids.length === 0) return null;
    const span = el('span', 'links');
    for (const id of ids) {
      const link = el('a', 'link', '#' + id);
      link.href = '#';
      link.dataset.id = id;
      link.addEventListener('click', (event) => {
        event.preventDefault();
        select(id);
      });
      span.appendChild(link);
    }
    return span;
  }

  async function retryEdited() {
    const id = detail.selected;
    let payload;
    try {
      payload = JSON.parse($('retry-payload').value);
    } catch (error) {
      return say('the payload is not JSON: ' + error.message, true);
    }
    try {
      await post('promises/' + encodeURIComponent(id) + '/retry', { payload });
      say('Retry #' + id + ' with the edited payload: done');
    } catch (error) {
      say('Retry #' + id + ': ' + error.message, true);
    }
    detail.onChanged();
  }

  $('retry-edited').addEventListener('click', retryEdited);
  $('detail-close').addEventListener('click', () => {
    detail.selected = null;
    $('detail').hidden = true;
  });

  window.promised.detail = {
    select,
    refreshSoon: debounce(refresh, 150),
    get selected() {
      return detail.selected;
    },
    set onChanged(callback) {
      detail.onChanged = callback;
    },
  };
})();
