// A small client for Roundtable's HTTP JSON API, as the tests use it.
// See docs/api.md for the endpoints.

/**
 * Sends one request. `cookie` is a session cookie (`rt_session=...`), `bearer` a
 * participant's join token. Resolves to the status, the parsed JSON body (or null)
 * and the session cookie the response set, if any.
 */
export async function request(baseUrl, method, path, { body, cookie, bearer } = {}) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (cookie) headers.cookie = cookie;
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  const response = await fetch(baseUrl + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
  }
  const session = response.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .find((c) => c.startsWith('rt_session='));
  return { status: response.status, body: json, cookie: session };
}

/** Like `request`, but fails unless the status is `expected`. Resolves to the body. */
export async function expectStatus(expected, baseUrl, method, path, options) {
  const result = await request(baseUrl, method, path, options);
  if (result.status !== expected) {
    throw new Error(
      `${method} ${path}: expected ${expected}, got ${result.status} ${JSON.stringify(result.body)}`,
    );
  }
  return result;
}

/** Signs the chair in; resolves to their session cookie. */
export async function signIn(server, chair = server.chair) {
  const { cookie } = await expectStatus(204, server.baseUrl, 'POST', '/api/session', {
    body: { email: chair.email, password: chair.password },
  });
  if (!cookie) throw new Error('signing in set no rt_session cookie');
  return cookie;
}

/**
 * Creates a conference as the signed-in chair, inviting `participants`.
 * Resolves to `{ conference, invited, chairParticipantId }`, where `invited[i]` is
 * `{ participant, join_link, token }` for `participants[i]`.
 */
export async function createConference(server, cookie, { title, participants = [] } = {}) {
  const { body } = await expectStatus(201, server.baseUrl, 'POST', '/api/conferences', {
    cookie,
    body: {
      title: title ?? `Conference ${Math.random().toString(36).slice(2, 8)}`,
      kind: 'initial',
      scheduled_start: '2030-03-04T10:00:00+00:00',
      children: [{ name: 'Alex', date_of_birth: '2019-04-30' }],
      headings_template: 'four_headings',
      participants,
    },
  });
  const { body: details } = await expectStatus(
    200,
    server.baseUrl,
    'GET',
    `/api/conferences/${body.conference.id}`,
    { cookie },
  );
  const chairParticipant = details.participants.find((p) => p.role === 'chair');
  return {
    conference: body.conference,
    invited: body.participants,
    chairParticipantId: chairParticipant.id,
  };
}
