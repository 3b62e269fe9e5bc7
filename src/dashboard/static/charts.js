// Drawing helpers: a state chart as nested boxes, a dependency graph and a line chart, in SVG or
// plain elements. Every text goes through textContent: data is never parsed as markup.
'use strict';
(function () {
  const { el, svg } = window.promised;

  /** The active state paths of a state value: 'a' → ['a']; { a: { b: 'c' } } → ['a', 'a.b', 'a.b.c']. */
  function activePaths(value, prefix, out) {
    out = out || new Set();
    if (typeof value === 'string') out.add(prefix ? prefix + '.' + value : value);
    else if (value && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) {
        const path = prefix ? prefix + '.' + key : key;
        out.add(path);
        activePaths(child, path, out);
      }
    }
    return out;
  }

  function transitionsOf(config) {
    const lines = [];
    const describe = (target) => {
      if (typeof target === 'string') return target.replace(/^\./, '');
      if (Array.isArray(target)) return target.map(describe).join(' | ');
      if (target && typeof target === 'object') return describe(target.target || '');
      return '';
    };
    for (const [event, target] of Object.entries(config.on || {})) lines.push(event + ' → ' + describe(target));
    if (config.invoke) {
      const invokes = Array.isArray(config.invoke) ? config.invoke : [config.invoke];
      for (const invoke of invokes) {
        const src = typeof invoke.src === 'string' ? invoke.src : (invoke.src && invoke.src.type) || 'actor';
        lines.push('invoke ' + src + (invoke.onDone ? ' ✓→ ' + describe(invoke.onDone) : '') + (invoke.onError ? ' ✗→ ' + describe(invoke.onError) : ''));
      }
    }
    for (const [delay, target] of Object.entries(config.after || {})) lines.push('after ' + delay + 'ms → ' + describe(target));
    if (config.always) lines.push('always → ' + describe(config.always));
    if (config.onDone) lines.push('done → ' + describe(config.onDone));
    return lines;
  }

  /** Draws `definition` (a machine config) into `container`, the states of `value` highlighted. */
  function stateChart(container, definition, value, status) {
    container.replaceChildren();
    const active = activePaths(value, '');
    function draw(name, config, path, parallelParent) {
      const box = el('div', 'state');
      if (config.type === 'parallel') box.classList.add('parallel');
      if (config.type === 'final') box.classList.add('final');
      if (parallelParent) box.classList.add('region');
      if (active.has(path)) box.classList.add('active');
      box.dataset.state = path;
      box.appendChild(el('div', 'state-name', name));
      const lines = transitionsOf(config);
      if (lines.length) {
        const list = el('ul', 'transitions');
        for (const line of lines) list.appendChild(el('li', '', line));
        box.appendChild(list);
      }
      const children = Object.entries(config.states || {});
      if (children.length) {
        const inner = el('div', config.type === 'parallel' ? 'children row' : 'children');
        for (const [childName, child] of children) inner.appendChild(draw(childName, child, path ? path + '.' + childName : childName, config.type === 'parallel'));
        box.appendChild(inner);
      }
      return box;
    }
    const root = draw(definition.id || 'machine', { ...definition, on: definition.on }, '', false);
    root.classList.add('root');
    if (status && status !== 'running') root.classList.add(status);
    container.appendChild(root);
  }

  /** A layered drawing of a dependency graph: parents left, children right. */
  function dependencyGraph(target, graph, selectedId, onSelect) {
    target.replaceChildren();
    const depth = new Map();
    const parents = new Map(graph.nodes.map((node) => [node.id, []]));
    for (const [from, to] of graph.edges) if (parents.has(to)) parents.get(to).push(from);
    const depthOf = (id, seen) => {
      if (depth.has(id)) return depth.get(id);
      if (seen.has(id)) return 0;
      seen.add(id);
      const d = Math.max(-1, ...(parents.get(id) || []).map((p) => depthOf(p, seen))) + 1;
      depth.set(id, d);
      return d;
    };
    const columns = [];
    for (const node of graph.nodes) {
      const d = depthOf(node.id, new Set());
      (columns[d] = columns[d] || []).push(node);
    }
    const W = 150, H = 44, GX = 40, GY = 14;
    const place = new Map();
    columns.forEach((column, x) => column.forEach((node, y) => place.set(node.id, { x: 10 + x * (W + GX), y: 10 + y * (H + GY) })));
    const width = 20 + columns.length * (W + GX);
    const height = 20 + Math.max(1, ...columns.map((c) => c.length)) * (H + GY);
    target.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    target.setAttribute('width', String(width));
    target.setAttribute('height', String(height));
    for (const [from, to] of graph.edges) {
      const a = place.get(from), b = place.get(to);
      if (!a || !b) continue;
      target.appendChild(svg('line', { x1: a.x + W, y1: a.y + H / 2, x2: b.x, y2: b.y + H / 2, class: 'edge' }));
    }
    for (const node of graph.nodes) {
      const p = place.get(node.id);
      const group = svg('g', { class: 'node ' + node.status + (node.id === selectedId ? ' selected' : ''), transform: 'translate(' + p.x + ',' + p.y + ')' });
      group.appendChild(svg('rect', { width: W, height: H, rx: 6 }));
      group.appendChild(svg('text', { x: 8, y: 18 }, '#' + node.id + ' ' + node.type));
      group.appendChild(svg('text', { x: 8, y: 35, class: 'sub' }, node.status));
      group.addEventListener('click', () => onSelect(node.id));
      target.appendChild(group);
    }
    if (graph.nodes.length <= 1) target.appendChild(svg('text', { x: 10, y: height - 4, class: 'sub' }, 'no dependencies'));
  }

  /** Lines of several series over time. */
  function lineChart(target, legend, points, series) {
    target.replaceChildren();
    legend.replaceChildren();
    if (points.length < 2) return;
    const max = Math.max(1, ...points.flatMap((p) => series.map((s) => p[s.key] || 0)));
    const x = (i) => (i / (points.length - 1)) * 600;
    const y = (v) => 115 - (v / max) * 110;
    for (const s of series) {
      const d = points.map((p, i) => (i ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(p[s.key] || 0).toFixed(1)).join(' ');
      target.appendChild(svg('path', { d, class: 'series ' + s.key }));
      const item = el('span', 'legend-item ' + s.key, s.label + ' ' + (points[points.length - 1][s.key] || 0));
      legend.appendChild(item);
    }
    legend.appendChild(el('span', 'legend-item', 'max ' + max));
  }

  window.promisedCharts = { stateChart, dependencyGraph, lineChart, activePaths };
})();
