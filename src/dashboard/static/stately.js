// Forwards the hub's frames (the Stately wire format) to the embedded stately.ai inspector, the
// way @statelyai/inspect's own server page does, after it says it is connected.
'use strict';
(function () {
  const iframe = document.getElementById('inspector');
  const buffer = [];
  let connected = false;
  window.addEventListener('message', (event) => {
    if (event.origin !== 'https://stately.ai' || !event.data || event.data.type !== '@statelyai.connected') return;
    connected = true;
    for (const frame of buffer.splice(0)) iframe.contentWindow.postMessage(frame, 'https://stately.ai');
  });
  const socket = new WebSocket(new URL('inspect', location.href).href.replace(/^http/, 'ws'));
  socket.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (connected) iframe.contentWindow.postMessage(frame, 'https://stately.ai');
    else buffer.push(frame);
  };
})();
