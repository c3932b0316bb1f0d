// Sends a fixed set of metrics with npm hot-shots to the aggregator's UDP port, then exits.
// Usage: node hot_shots_send.js <port> <dogstatsd|telegraf>
// Driven by tests/aggregator/test_senders.py, which asserts what reaches Carbon.
'use strict';
const StatsD = require('hot-shots');

const port = Number(process.argv[2]);
const telegraf = process.argv[3] === 'telegraf';
const client = new StatsD({
  host: '127.0.0.1',
  port: port,
  prefix: 'hs.',
  globalTags: { env: 'prod' },
  telegraf: telegraf,
  maxBufferSize: 0, // one datagram per metric, sent at once
  errorHandler: (err) => { console.error(err); process.exitCode = 1; },
});

client.increment('requests', 1, { route: 'home' });
client.increment('requests', 2, ['route:home']);
client.decrement('queue', 3);
client.timing('latency', 42, { route: 'home' });
client.histogram('size', 100);
client.distribution('render', 7);
client.gauge('workers', 8, ['pool:a']);
client.set('users', 'u1');
client.set('users', 'u2');
if (!telegraf) {
  client.event('Deploy', 'v1.2 to prod', { alert_type: 'info' }, ['team:web']);
  client.check('db.up', client.CHECKS.OK, { message: 'fine' }, ['db:main']);
}
client.close((err) => {
  if (err) {
    console.error(err);
    process.exitCode = 1;
  }
});
