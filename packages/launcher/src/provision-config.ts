import { DEFAULT_CONSUMER_SETTINGS, type ConsumerSettings } from '@tandem/bus';
import { DEFAULT_SUBJECT_PREFIX } from '@tandem/contracts';
import { ConfigError, parseConfig } from '@tandem/service-kit';
import { z } from 'zod';

/**
 * The settings the provisioning step reads: the same variables, with the same defaults and bounds, as
 * the services whose consumers it creates (TANDEM_MAX_DELIVER, TANDEM_ACK_WAIT_MS), so a provisioned
 * consumer matches what its service would create.
 */
export const ProvisionConfig = z.object({
  NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
  TANDEM_SUBJECT_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/)
    .default(DEFAULT_SUBJECT_PREFIX),
  TANDEM_MAX_DELIVER: z.coerce.number().int().min(2).max(100).default(DEFAULT_CONSUMER_SETTINGS.maxDeliver),
  /** The ack wait of every durable consumer, as the services read it (service-kit's BaseConfig). */
  TANDEM_ACK_WAIT_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(600_000)
    .default(DEFAULT_CONSUMER_SETTINGS.ackWaitMs),
  /** Replicas of every stream, as the services read it (service-kit's BaseConfig); never lowered. */
  TANDEM_STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  /** The provisioner's NATS user and password (infra/nats/nats.conf); unset: no credentials. */
  TANDEM_NATS_PROVISIONER_USER: z.preprocess(
    (value) => (value === '' ? undefined : value),
    z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/)
      .optional(),
  ),
  TANDEM_NATS_PROVISIONER_PASSWORD: z.preprocess(
    (value) => (value === '' ? undefined : value),
    z.string().optional(),
  ),
});
/** The provisioning step's settings. */
export type ProvisionConfig = z.infer<typeof ProvisionConfig>;

/** Parses the provisioning settings (every problem at once, as a ConfigError). */
export function parseProvisionConfig(env: Record<string, string | undefined>): ProvisionConfig {
  const user = (env['TANDEM_NATS_PROVISIONER_USER'] ?? '') !== '';
  const password = (env['TANDEM_NATS_PROVISIONER_PASSWORD'] ?? '') !== '';
  const pairing =
    user === password
      ? []
      : ['TANDEM_NATS_PROVISIONER_USER and TANDEM_NATS_PROVISIONER_PASSWORD: set both or neither'];
  try {
    const config = parseConfig(ProvisionConfig, env);
    if (pairing.length > 0) throw new ConfigError(pairing);
    return config;
  } catch (error) {
    if (!(error instanceof ConfigError) || pairing.length === 0 || error.problems.includes(pairing[0] ?? ''))
      throw error;
    throw new ConfigError([...error.problems, ...pairing]);
  }
}

/** The provisioner's credentials of a parsed config, or null (connect without credentials). */
export function provisionerCredentialsOf(config: ProvisionConfig): { user: string; password: string } | null {
  const user = config.TANDEM_NATS_PROVISIONER_USER;
  const password = config.TANDEM_NATS_PROVISIONER_PASSWORD;
  return user !== undefined && password !== undefined ? { user, password } : null;
}

/** The consumer settings of a provisioning config. */
export function consumerSettingsOf(config: ProvisionConfig): ConsumerSettings {
  return { maxDeliver: config.TANDEM_MAX_DELIVER, ackWaitMs: config.TANDEM_ACK_WAIT_MS };
}
