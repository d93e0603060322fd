import { headers as createHeaders, type MsgHdrs } from '@nats-io/transport-node';

/** The header JetStream deduplicates publishes on. Wire name: renaming it disables deduplication. */
export const MSG_ID_HEADER = 'Nats-Msg-Id';

/** Plain headers for NATS (one value per name). */
export function toNatsHeaders(values: Readonly<Record<string, string>> | undefined): MsgHdrs | undefined {
  if (values === undefined) return undefined;
  const entries = Object.entries(values);
  if (entries.length === 0) return undefined;
  const headers = createHeaders();
  for (const [name, value] of entries) headers.set(name, value);
  return headers;
}

/** NATS headers as a plain record (the first value of a repeated header), so no nats type leaks to handlers. */
export function fromNatsHeaders(headers: MsgHdrs | undefined): Record<string, string> {
  const values: Record<string, string> = {};
  if (headers === undefined) return values;
  for (const name of headers.keys()) values[name] = headers.get(name);
  return values;
}
