// Counts and throughput over time, drawn by uPlot (vendored: no CDN): time on the x axis, the
// number of promises on the left axis, completions per second on the right, a legend with the
// values under the cursor (or the latest).
'use strict';
(function () {
  const SERIES = [
    { key: 'pending', label: 'pending', stroke: '#2563eb', scale: 'count' },
    { key: 'in_progress', label: 'running', stroke: '#7c3aed', scale: 'count' },
    { key: 'waiting', label: 'waiting', stroke: '#a16207', scale: 'count' },
    { key: 'failed', label: 'failed', stroke: '#b91c1c', scale: 'count' },
    { key: 'deadLetters', label: 'dead letters', stroke: '#111827', scale: 'count', dash: [4, 3] },
    { key: 'perSecond', label: 'completed / s', stroke: '#15803d', scale: 'rate', width: 2.5 },
  ];
  const chart = { plot: null, points: [] };
  const WHOLE = [1, 2, 5].flatMap((step) => [1, 10, 100, 1000, 10000, 100000, 1000000].map((scale) => step * scale)).sort((a, b) => a - b);

  const count = (value) => (value === null || value === undefined ? '—' : Math.round(value).toLocaleString());
  const rate = (value) => (value === null || value === undefined ? '—' : value.toFixed(value < 10 ? 2 : 0) + ' /s');

  function options(width) {
    return {
      width,
      height: 180,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, count: { auto: true, range: (u, min, max) => [0, Math.max(1, max)] }, rate: { auto: true, range: (u, min, max) => [0, Math.max(1, max)] } },
      axes: [
        { label: 'time', size: 40 },
        // Counts are whole: ticks step by 1, 2, 5, 10, …
        { scale: 'count', label: 'promises', size: 60, incrs: WHOLE, values: (u, ticks) => ticks.map(count) },
        { scale: 'rate', side: 1, label: 'completed / s', size: 64, grid: { show: false }, values: (u, ticks) => ticks.map((tick) => tick + ' /s') },
      ],
      series: [
        { label: 'time', value: (u, ts) => (ts === null ? '—' : new Date(ts * 1000).toLocaleTimeString()) },
        ...SERIES.map((series) => ({
          label: series.label,
          scale: series.scale,
          stroke: series.stroke,
          width: series.width || 1.5,
          dash: series.dash,
          points: { show: false },
          value: (u, value) => (series.scale === 'rate' ? rate(value) : count(value)),
        })),
      ],
    };
  }

  /** Adds one `stats()` answer (with its `at`) and redraws; keeps the last `keep` points. */
  function addStats(container, stats, keep) {
    chart.points.push(stats);
    if (chart.points.length > keep) chart.points.shift();
    const data = [chart.points.map((point) => point.at / 1000), ...SERIES.map((series) => chart.points.map((point) => (series.key === 'perSecond' ? point.recent.perSecond : point[series.key])))];
    if (!chart.plot) {
      chart.plot = new window.uPlot(options(Math.max(320, container.clientWidth)), data, container);
      window.addEventListener('resize', () => chart.plot.setSize({ width: Math.max(320, container.clientWidth), height: 180 }));
    } else chart.plot.setData(data);
    // Away from the cursor the legend shows the latest values, not dashes.
    if (!(chart.plot.cursor.left >= 0)) chart.plot.setLegend({ idx: data[0].length - 1 });
  }

  window.promisedCharts = Object.assign(window.promisedCharts || {}, { addStats });
})();
