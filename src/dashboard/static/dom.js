// Shared by every script of the page: elements built with textContent only (data is never
// parsed as markup), the JSON API (reads, and actions with the header the server requires),
// the status line, and a coalescing scheduler for refreshes.
'use strict';
(function () {
  const SVG = 'http://www.w3.org/2000/svg';

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  async function api(path) {
    const response = await fetch('api/' + path, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
    const body = await response.json();
    if (!response.ok) throw new Error((body.error && body.error.code + ': ' + body.error.message) || response.statusText);
    return body;
  }

  async function post(path, body) {
    const response = await fetch('api/' + path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-requested-with': 'promised', accept: 'application/json' },
      body: JSON.stringify(body || {}),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((answer.error && answer.error.code + ': ' + answer.error.message) || response.statusText);
    return answer;
  }

  function say(text, isError) {
    const message = document.getElementById('message');
    message.textContent = text;
    message.className = 'message' + (isError ? ' error' : '');
  }

  /** `work` at most once per `ms`, however often asked; its errors go to the status line. */
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

  /** "1.2 s", "340 ms", "3 min", "2 h" */
  function duration(ms) {
    if (ms === null || ms === undefined || !(ms >= 0)) return '';
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 60_000) return (ms / 1000).toFixed(ms < 10_000 ? 1 : 0) + ' s';
    if (ms < 3_600_000) return Math.round(ms / 60_000) + ' min';
    return (ms / 3_600_000).toFixed(1) + ' h';
  }

  /** A time as the page shows it: the time of day today, the date otherwise. */
  function when(iso) {
    if (!iso) return '';
    const date = new Date(iso);
    const today = new Date().toDateString() === date.toDateString();
    return today ? date.toLocaleTimeString() : date.toLocaleString();
  }

  window.promised = { el, svg, api, post, say, debounce, duration, when };
})();
