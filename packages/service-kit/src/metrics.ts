import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Metrics every service exports, plus the registry a service adds its own to. */
export interface ServiceMetrics {
  registry: Registry;
  messagesHandled: Counter<'consumer' | 'outcome'>;
  handlerSeconds: Histogram<'consumer'>;
  deadLetters: Counter<'consumer' | 'code'>;
}

/** A fresh registry with process metrics and the shared bus counters, labelled with the service name. */
export function createMetrics(service: string): ServiceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: 'tandem_' });
  return {
    registry,
    messagesHandled: new Counter({
      name: 'tandem_messages_handled_total',
      help: 'Messages handled by consumer and outcome (ok: acked; error: nak or dead letter)',
      labelNames: ['consumer', 'outcome'],
      registers: [registry],
    }),
    handlerSeconds: new Histogram({
      name: 'tandem_handler_duration_seconds',
      help: 'Time spent in a message handler',
      labelNames: ['consumer'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'tandem_dead_letters_total',
      help: 'Messages dead-lettered by consumer and error code',
      labelNames: ['consumer', 'code'],
      registers: [registry],
    }),
  };
}
