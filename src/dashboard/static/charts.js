// Drawing helpers: the active paths of a state value, and a dependency graph in SVG. Every text goes through textContent: data is never parsed as markup.
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

  window.promisedCharts = Object.assign(window.promisedCharts || {}, { dependencyGraph, activePaths });
})();
