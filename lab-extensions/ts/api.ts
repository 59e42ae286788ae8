/** Calls to the server extension's routes under `<base_url>skydeck/api/`. */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** A failed call; `message` is the server's explanation, fit to show to the user. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: Record<string, unknown> = {}
  ) {
    super(message);
  }
}

/** Fetch `path` under the extension's API; throws `ApiError` on any failure. */
export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'skydeck', 'api', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(`The lab server could not be reached (${error}).`, 0);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let body: Record<string, unknown> = {};
    try {
      body = await response.json();
      if (typeof body.message === 'string') {
        message = body.message;
      }
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(message, response.status, body);
  }
  return response;
}

export async function requestJSON<T>(path: string, init: RequestInit = {}): Promise<T> {
  return (await request(path, init)).json() as Promise<T>;
}

export async function requestText(path: string, init: RequestInit = {}): Promise<string> {
  return (await request(path, init)).text();
}
