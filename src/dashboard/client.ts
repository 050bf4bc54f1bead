import { GuildError } from '../errors.js';
import type { DashboardState } from '../telemetry/state.js';

/** How long `fetchState` waits for an answer. */
const TIMEOUT_MS = 5000;

/**
 * `/api/state` of a running Guild (what `guild status` prints). Rejects with code UNAVAILABLE
 * when nothing answers, the token is refused, or the answer is not a dashboard's.
 */
export async function fetchState(baseUrl: string, token: string | null = null): Promise<DashboardState> {
  let url: URL;
  try {
    url = new URL('api/state', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  } catch {
    throw new GuildError('INVALID_OPTION', `Expected a URL such as http://127.0.0.1:8090/, got ${JSON.stringify(baseUrl)}`);
  }
  let res: Response;
  try {
    res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
    throw new GuildError('UNAVAILABLE', `no Guild dashboard answers at ${url.origin} (${cause}); start one with: guild run <file> --dashboard`, { cause: e });
  }
  if (res.status === 401) throw new GuildError('UNAVAILABLE', `${url.origin} refused the token: pass --token or set GUILD_DASHBOARD_TOKEN`);
  if (!res.ok) throw new GuildError('UNAVAILABLE', `${url.href} answered HTTP ${res.status}`);
  const state = (await res.json().catch(() => null)) as DashboardState | null;
  if (state?.version !== 1) throw new GuildError('UNAVAILABLE', `${url.href} did not answer with a Guild state`);
  return state;
}
