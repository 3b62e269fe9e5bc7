// The four metric classes of prom-client, loaded without its index. The index also loads the
// default process metrics, the Pushgateway (http), the cluster aggregator and @opentelemetry/api:
// about 25 ms of every command's start-up (`promised stats` builds an engine too), for metrics
// the engine never registers. prom-client has no `exports` map, so its files are public paths;
// their types are the index's.
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

const require = createRequire(import.meta.url);

export const Registry = require('prom-client/lib/registry') as typeof PromClient.Registry;
export const Counter = require('prom-client/lib/counter') as typeof PromClient.Counter;
export const Gauge = require('prom-client/lib/gauge') as typeof PromClient.Gauge;
export const Histogram = require('prom-client/lib/histogram') as typeof PromClient.Histogram;
