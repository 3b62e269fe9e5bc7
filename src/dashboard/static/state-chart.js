// A workflow's state chart, laid out by elkjs (the Eclipse Layout Kernel, vendored) as Stately's
// editor draws one: states as boxes nested in their parents, parallel regions dashed, final
// states double-bordered, an initial dot in each compound state, every transition an arrow
// labelled with its event ("APPROVE", "done: publish", "after 1 d", "always"). The current
// state is lit, and the states and transitions this instance went through are highlighted.
// The layout depends on the definition only: it is computed once per machine.
'use strict';
(function () {
  const { el, svg } = window.promised;
  const LEAF_HEIGHT = 34;
  const TITLE = 26;
  const layouts = new Map();
  let elk = null;
  let markers = 0;

  const measure = (() => {
    const context = document.createElement('canvas').getContext('2d');
    return (text, bold) => {
      context.font = (bold ? '600 ' : '') + '12px system-ui, sans-serif';
      return Math.ceil(context.measureText(text).width);
    };
  })();

  /** "after 86400000" → "after 1 d": delays as people read them. */
  function delayLabel(delay) {
    const ms = Number(delay);
    if (!Number.isFinite(ms)) return 'after ' + delay;
    const units = [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'min'], [1000, 's']];
    for (const [size, unit] of units) if (ms >= size && ms % (size / 10) === 0) return 'after ' + +(ms / size).toFixed(1) + ' ' + unit;
    return 'after ' + ms + ' ms';
  }

  /** The nodes and transitions of a machine config, with targets resolved to state paths. */
  function model(definition) {
    const nodes = new Map();
    const byId = new Map();
    const transitions = [];
    const join = (a, b) => (a ? a + '.' + b : b);
    (function visit(config, path, parent) {
      nodes.set(path, { path, parent, config, name: path === '' ? definition.id || 'machine' : path.split('.').pop() });
      if (config.id && path !== '') byId.set(config.id, path);
      for (const [name, child] of Object.entries(config.states || {})) visit(child, join(path, name), path);
    })(definition, '', null);
    const resolve = (from, target) => {
      if (typeof target !== 'string') return undefined;
      const parent = nodes.get(from).parent;
      if (target.startsWith('#')) {
        const id = target.slice(1);
        if (byId.has(id)) return byId.get(id);
        const prefix = (definition.id || '') + '.';
        return id === definition.id ? '' : id.startsWith(prefix) ? id.slice(prefix.length) : undefined;
      }
      if (target.startsWith('.')) return join(from, target.slice(1));
      return join(parent === null ? '' : parent, target);
    };
    const add = (from, spec, kind, label) => {
      for (const one of Array.isArray(spec) ? spec : [spec]) {
        const config = typeof one === 'string' || one === undefined ? { target: one } : one;
        const guard = config.guard ? ' [' + (config.guard.type || config.guard) + ']' : '';
        const targets = config.target === undefined ? [from] : (Array.isArray(config.target) ? config.target : [config.target]).map((t) => resolve(from, t));
        // The machine's own transitions (from or to the root) are not drawn: the root is the frame.
        for (const to of targets) if (to !== undefined && to !== '' && from !== '' && nodes.has(to)) transitions.push({ from, to, kind, event: kind === 'event' ? label : null, label: label + guard });
      }
    };
    for (const { path, config } of nodes.values()) {
      for (const [event, spec] of Object.entries(config.on || {})) add(path, spec, 'event', event);
      for (const invoke of [].concat(config.invoke || [])) {
        const src = typeof invoke.src === 'string' ? invoke.src : (invoke.src && invoke.src.type) || 'actor';
        if (invoke.onDone) add(path, invoke.onDone, 'done', 'done: ' + src);
        if (invoke.onError) add(path, invoke.onError, 'error', 'error: ' + src);
      }
      for (const [delay, spec] of Object.entries(config.after || {})) add(path, spec, 'after', delayLabel(delay));
      if (config.always) add(path, config.always, 'always', 'always');
      if (config.onDone && path !== '') add(path, config.onDone, 'state-done', 'done');
    }
    return { nodes, transitions };
  }

  /** The ELK graph of a model: compound nodes for nested states, an initial dot in each. */
  function elkGraph({ nodes, transitions }) {
    const elkNodes = new Map();
    const edges = [];
    for (const node of nodes.values()) {
      const children = Object.keys(node.config.states || {});
      const elkNode = children.length
        ? { id: 'n:' + node.path, children: [], edges: [], layoutOptions: { 'elk.padding': '[top=' + (TITLE + 6) + ',left=12,bottom=12,right=12]', 'elk.direction': node.config.type === 'parallel' ? 'DOWN' : 'RIGHT' } }
        : { id: 'n:' + node.path, width: Math.max(64, measure(node.name, true) + 24), height: LEAF_HEIGHT };
      elkNodes.set(node.path, elkNode);
      if (node.parent !== null) elkNodes.get(node.parent).children.push(elkNode);
      if (children.length && node.config.initial && node.config.type !== 'parallel') {
        elkNode.children.push({ id: 'i:' + node.path, width: 10, height: 10 });
        edges.push({ id: 'init:' + node.path, sources: ['i:' + node.path], targets: ['n:' + (node.path ? node.path + '.' : '') + node.config.initial] });
      }
    }
    transitions.forEach((t, index) => edges.push({ id: 't:' + index, sources: ['n:' + t.from], targets: ['n:' + t.to], labels: [{ text: t.label, width: measure(t.label) + 8, height: 16 }] }));
    const root = elkNodes.get('');
    root.edges = edges;
    root.layoutOptions = {
      ...root.layoutOptions,
      'elk.algorithm': 'layered',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT',
      'elk.edgeLabels.placement': 'CENTER',
      'elk.layered.spacing.nodeNodeBetweenLayers': '40',
      'elk.spacing.edgeLabel': '4',
      'elk.spacing.nodeNode': '24',
    };
    return root;
  }

  function layoutOf(definition) {
    const key = JSON.stringify(definition);
    if (!layouts.has(key)) {
      elk = elk || new window.ELK();
      const parts = model(definition);
      layouts.set(key, elk.layout(elkGraph(parts)).then((graph) => ({ ...parts, graph })));
    }
    return layouts.get(key);
  }

  /** Whether history line `line` went along transition `t` (the event, or the kind of internal event). */
  function tookTransition(t, line, activePaths) {
    const from = activePaths(line.from, ''), to = activePaths(line.to, '');
    const within = (paths, path) => path === '' || paths.has(path);
    if (!within(from, t.from) || !within(to, t.to)) return false;
    if (t.kind === 'event') return line.event === t.event;
    if (t.kind === 'done') return line.event.startsWith('xstate.done.actor');
    if (t.kind === 'error') return line.event.startsWith('xstate.error.actor');
    if (t.kind === 'after') return line.event.startsWith('xstate.after');
    return true;
  }

  function render(container, laid, value, status, history) {
    const { activePaths } = window.promisedCharts;
    const active = activePaths(value, '');
    const visited = new Set();
    for (const line of history) for (const path of activePaths(line.to, '')) visited.add(path);
    const taken = new Set(laid.transitions.map((t, index) => (history.some((line) => line.from !== null && tookTransition(t, line, activePaths)) ? index : -1)).filter((i) => i >= 0));
    const { graph } = laid;
    const marker = 'arrow-' + ++markers;
    const root = svg('svg', { class: 'state-chart', width: graph.width, height: graph.height, viewBox: '0 0 ' + graph.width + ' ' + graph.height, role: 'img' });
    const defs = svg('defs');
    for (const [suffix, cls] of [['', 'arrowhead'], ['-taken', 'arrowhead taken']]) {
      const m = svg('marker', { id: marker + suffix, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
      m.appendChild(svg('path', { d: 'M0,0 L10,5 L0,10 z', class: cls }));
      defs.appendChild(m);
    }
    root.appendChild(defs);
    (function drawNode(elkNode, depth) {
      const path = elkNode.id.slice(2);
      if (elkNode.id.startsWith('i:')) {
        root.appendChild(svg('circle', { cx: elkNode.x + 5, cy: elkNode.y + 5, r: 5, class: 'initial' }));
        return;
      }
      const node = laid.nodes.get(path);
      const parent = node.parent === null ? null : laid.nodes.get(node.parent);
      const classes = ['state'];
      if (path === '') classes.push('root', status || 'running');
      if (node.config.type === 'final') classes.push('final');
      if (node.config.type === 'parallel') classes.push('parallel');
      if (parent && parent.config.type === 'parallel') classes.push('region');
      if (path !== '' && active.has(path)) classes.push('active');
      else if (path !== '' && visited.has(path)) classes.push('visited');
      const group = svg('g', { class: classes.join(' '), 'data-state': path });
      group.appendChild(svg('rect', { x: elkNode.x, y: elkNode.y, width: elkNode.width, height: elkNode.height, rx: 8 }));
      if (node.config.type === 'final') group.appendChild(svg('rect', { x: elkNode.x + 3, y: elkNode.y + 3, width: elkNode.width - 6, height: elkNode.height - 6, rx: 6, class: 'inner' }));
      const compound = elkNode.children && elkNode.children.length;
      group.appendChild(svg('text', compound ? { x: elkNode.x + 10, y: elkNode.y + 17, class: 'state-name' } : { x: elkNode.x + elkNode.width / 2, y: elkNode.y + LEAF_HEIGHT / 2 + 4, 'text-anchor': 'middle', class: 'state-name' }, node.name));
      root.appendChild(group);
      for (const child of elkNode.children || []) drawNode(child, depth + 1);
    })(graph, 0);
    for (const edge of graph.edges) {
      const index = edge.id.startsWith('t:') ? Number(edge.id.slice(2)) : -1;
      const isTaken = taken.has(index);
      for (const section of edge.sections || []) {
        const points = [section.startPoint, ...(section.bendPoints || []), section.endPoint];
        const d = points.map((p, i) => (i ? 'L' : 'M') + p.x.toFixed(1) + ' ' + p.y.toFixed(1)).join(' ');
        const attributes = { d, class: 'transition' + (isTaken ? ' taken' : '') + (index < 0 ? ' initial-edge' : ''), 'marker-end': 'url(#' + marker + (isTaken ? '-taken' : '') + ')' };
        if (index >= 0) attributes['data-transition'] = laid.transitions[index].from + ' → ' + laid.transitions[index].to;
        root.appendChild(svg('path', attributes));
      }
      for (const label of edge.labels || []) {
        const group = svg('g', { class: 'transition-label' + (isTaken ? ' taken' : '') });
        group.appendChild(svg('rect', { x: label.x, y: label.y, width: label.width, height: label.height, rx: 3 }));
        group.appendChild(svg('text', { x: label.x + 4, y: label.y + 12 }, label.text));
        root.appendChild(group);
      }
    }
    container.replaceChildren(root);
  }

  /**
   * Draws `definition` into `container` with the states of `value` lit and what `history`
   * (workflowHistory lines: { event, from, to }) went through highlighted.
   */
  function stateChart(container, definition, value, status, history) {
    const ticket = String((Number(container.dataset.ticket) || 0) + 1);
    container.dataset.ticket = ticket;
    layoutOf(definition)
      .then((laid) => {
        if (container.dataset.ticket === ticket) render(container, laid, value, status, history || []);
      })
      .catch((error) => {
        container.replaceChildren(el('p', 'empty', 'the chart could not be laid out: ' + error.message));
      });
  }

  window.promisedCharts = Object.assign(window.promisedCharts || {}, { stateChart, delayLabel });
})();
