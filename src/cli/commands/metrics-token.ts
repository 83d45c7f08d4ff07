/** Making a scraper's metrics token through the API (`vireo token create --metrics`, `vireo metrics scrape-config`). */
import { metricsTokenSecret, newMetricsToken } from '../../api/metrics-token.js';
import { resources } from '../../client/index.js';
import type { Client } from '../../client/index.js';

/** Stores a new metrics token's Secret (its hash) and returns the token, which exists nowhere else. */
export async function createMetricsToken(client: Client, description: string): Promise<string> {
  const token = newMetricsToken();
  await client.create(resources.secrets, metricsTokenSecret(token, description));
  return token.token;
}
