// Schedules and limits: every cron schedule with its next run (trigger now, pause, resume), the
// task types paused in every process (resume, or pause another), and the keys of per-key
// concurrency limits with work, those held at their limit marked.
'use strict';
(function () {
  const { el, api, post, say, debounce, when } = window.promised;
  const $ = (id) => document.getElementById(id);
  const changed = { callback: () => undefined };

  /** "in 3 min", "in 2 h", "now" */
  function fromNow(iso) {
    if (!iso) return '—';
    const ms = Date.parse(iso) - Date.now();
    if (ms < 1000) return 'now';
    if (ms < 60_000) return 'in ' + Math.round(ms / 1000) + ' s';
    if (ms < 3_600_000) return 'in ' + Math.round(ms / 60_000) + ' min';
    if (ms < 86_400_000) return 'in ' + (ms / 3_600_000).toFixed(1) + ' h';
    return 'in ' + (ms / 86_400_000).toFixed(1) + ' d';
  }

  function button(label, cls, path, done) {
    const node = el('button', 'action ' + cls, label);
    node.type = 'button';
    node.addEventListener('click', async () => {
      node.disabled = true;
      try {
        const answer = await post(path);
        say(done(answer));
      } catch (error) {
        say(label + ': ' + error.message, true);
      }
      refreshSoon();
      changed.callback();
    });
    return node;
  }

  function cells(row, values) {
    for (const [cls, value] of values) row.appendChild(el('td', cls, value));
    return row;
  }

  async function refresh() {
    const view = await api('schedules');
    const schedules = $('schedule-table').tBodies[0];
    schedules.replaceChildren(
      ...view.schedules.map((schedule) => {
        const row = el('tr');
        row.dataset.schedule = schedule.name;
        const name = encodeURIComponent(schedule.name);
        const actions = el('td', 'actions');
        actions.appendChild(button('Trigger now', 'trigger', 'schedules/' + name + '/trigger', (answer) => schedule.name + ': run #' + answer.id + ' created'));
        actions.appendChild(schedule.paused ? button('Resume', 'resume', 'schedules/' + name + '/resume', () => schedule.name + ' resumed') : button('Pause', 'pause', 'schedules/' + name + '/pause', () => schedule.name + ' paused'));
        cells(row, [
          ['name', schedule.name],
          ['cron', schedule.cron + (schedule.timezone ? ' (' + schedule.timezone + ')' : '')],
          ['last-due', schedule.lastDueAt ? when(schedule.lastDueAt) : '—'],
          ['next-run', schedule.paused ? 'paused' : fromNow(schedule.nextRunAt)],
        ]);
        row.querySelector('.next-run').title = schedule.nextRunAt ? new Date(schedule.nextRunAt).toLocaleString() : '';
        row.appendChild(actions);
        return row;
      }),
    );
    if (view.schedules.length === 0) schedules.appendChild(cells(el('tr', 'empty'), [['', 'no periodic schedules']]));
    const paused = $('paused-types');
    paused.replaceChildren(
      ...view.pausedTypes.map((entry) => {
        const item = el('li');
        item.dataset.type = entry.type;
        item.append(el('code', '', entry.type), el('span', 'since', ' since ' + when(entry.pausedAt) + ' '), button('Resume', 'resume', 'types/' + encodeURIComponent(entry.type) + '/resume', () => entry.type + ' resumed'));
        return item;
      }),
    );
    if (view.pausedTypes.length === 0) paused.appendChild(el('li', 'empty', 'no paused task types'));
    const keys = $('limited-keys').tBodies[0];
    keys.replaceChildren(
      ...view.limitedKeys.map((entry) => {
        const row = cells(el('tr', entry.held ? 'held' : ''), [
          ['type', entry.type],
          ['key', entry.key],
          ['running', entry.running + (entry.limit === null ? '' : ' / ' + entry.limit)],
          ['pending', entry.pending],
          ['held', entry.held ? 'held at its limit' : ''],
        ]);
        row.dataset.key = entry.type + ' ' + entry.key;
        return row;
      }),
    );
    if (view.limitedKeys.length === 0) keys.appendChild(cells(el('tr', 'empty'), [['', 'no keys with work']]));
  }
  const refreshSoon = debounce(refresh, 300);

  $('pause-type').addEventListener('submit', async (event) => {
    event.preventDefault();
    const type = $('pause-type-name').value.trim();
    if (!type) return;
    try {
      await post('types/' + encodeURIComponent(type) + '/pause');
      say(type + ' paused in every process');
      $('pause-type-name').value = '';
    } catch (error) {
      say('Pause ' + type + ': ' + error.message, true);
    }
    refreshSoon();
  });

  window.promised.schedules = {
    refresh,
    refreshSoon,
    set onChanged(callback) {
      changed.callback = callback;
    },
  };
})();
