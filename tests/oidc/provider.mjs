// A real OpenID Connect provider for pbxwatch's tests: oidc-provider (npm)
// on a loopback port, one confidential client, authorisation-code flow with
// PKCE required, a `groups` claim from a configured user list, and a small
// username/password login page that a browser or an HTTP client can submit.
//
//   node provider.mjs --port 0 --config provider.json
//
// provider.json (written by tests/oidc/harness.py):
//   {"client": {"client_id": "...", "client_secret": "...",
//               "redirect_uris": ["http://127.0.0.1:8080/auth/callback"],
//               "post_logout_redirect_uris": [...],
//               "token_endpoint_auth_method": "client_secret_basic"},
//    "users": [{"username": "ops", "password": "...", "groups": ["pbxwatch-operations"],
//               "name": "...", "email": "..."}]}
//
// With --port 0 the system picks the port.  The issuer is always
// http://127.0.0.1:<port>.  Once listening it prints one JSON line on stdout:
//   {"issuer": "http://127.0.0.1:<port>", "port": <port>}
// Plain http is fine here: oidc-provider sets its cookies `Secure` only on
// TLS requests, and web clients may register http redirect URIs.  It stops on
// SIGTERM/SIGINT.

import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    config: { type: 'string' },
  },
});

const config = args.config
  ? JSON.parse(readFileSync(args.config, 'utf8'))
  : JSON.parse(process.env.PBXWATCH_TEST_OIDC_CONFIG ?? '{}');
const client = config.client ?? {
  client_id: process.env.OIDC_CLIENT_ID,
  client_secret: process.env.OIDC_CLIENT_SECRET,
  redirect_uris: (process.env.OIDC_REDIRECT_URIS ?? '').split(/\s+/).filter(Boolean),
};
if (!client.client_id || !client.client_secret || !client.redirect_uris?.length) {
  console.error('provider.mjs: a client_id, client_secret and redirect_uris are needed');
  process.exit(2);
}
const users = new Map((config.users ?? []).map((user) => [user.username, user]));

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function samePassword(given, expected) {
  const a = Buffer.from(String(given ?? ''));
  const b = Buffer.from(String(expected ?? ''));
  return a.length === b.length && timingSafeEqual(a, b);
}

function loginPage(uid, { error = '', username = '' } = {}) {
  const alert = error ? `<p role="alert" class="error">${escapeHtml(error)}</p>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in - test identity provider</title>
<style>
  body { font-family: sans-serif; margin: 2rem; color: #111; background: #fff; }
  label { display: block; margin-top: 1rem; }
  input { font-size: 1rem; padding: .3rem; }
  button { margin-top: 1rem; font-size: 1rem; padding: .4rem 1rem; }
  .error { color: #a00000; }
</style>
</head>
<body>
<main>
<h1>Sign in</h1>
${alert}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <label for="username">Username</label>
  <input id="username" name="username" type="text" required autofocus value="${escapeHtml(username)}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" required>
  <button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`;
}

let provider;

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) {
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

// The login interaction: GET shows the form, POST .../login checks the user.
// Consent is never asked: loadExistingGrant below grants the requested scopes
// to the one (first-party) client.
async function interaction(req, res, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    send(res, 400, `interaction not found: ${escapeHtml(err.message)}`, 'text/plain; charset=utf-8');
    return;
  }
  if (details.uid !== uid) {
    send(res, 400, 'interaction mismatch', 'text/plain; charset=utf-8');
    return;
  }
  if (details.prompt.name !== 'login') {
    // only consent can be left here; grant it
    const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    grant.addOIDCScope(String(details.params.scope ?? 'openid'));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  if (req.method === 'GET' && !action) {
    send(res, 200, loginPage(uid, { username: details.params.login_hint ?? '' }));
    return;
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const username = form.get('username') ?? '';
    const user = users.get(username);
    if (!user || !samePassword(form.get('password'), user.password)) {
      send(res, 401, loginPage(uid, { error: 'Wrong username or password.', username }));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: username } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }
  send(res, 405, 'method not allowed', 'text/plain; charset=utf-8');
}

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const match = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login))?$/);
  if (match && provider) {
    interaction(req, res, match[1], match[2]).catch((err) => {
      console.error(err);
      if (!res.headersSent) send(res, 500, 'internal error', 'text/plain; charset=utf-8');
    });
    return;
  }
  if (!provider) {
    send(res, 503, 'starting', 'text/plain; charset=utf-8');
    return;
  }
  provider.callback()(req, res);
});

server.listen(Number(args.port), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  provider = new Provider(issuer, {
    clients: [{
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_uris: client.redirect_uris,
      post_logout_redirect_uris: client.post_logout_redirect_uris ?? [],
      token_endpoint_auth_method: client.token_endpoint_auth_method ?? 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      application_type: 'web',
    }],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => true },
    scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username', 'groups'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    // the requested claims also go into the ID token (as Entra ID puts groups there)
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true },
    },
    interactions: {
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    async loadExistingGrant(ctx) {
      if (!ctx.oidc.session?.accountId) return undefined;
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      if (!grant) {
        grant = new ctx.oidc.provider.Grant({
          clientId: ctx.oidc.client.clientId,
          accountId: ctx.oidc.session.accountId,
        });
      }
      grant.addOIDCScope(String(ctx.oidc.params.scope ?? 'openid'));
      await grant.save();
      return grant;
    },
    async findAccount(ctx, sub) {
      const user = users.get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            name: user.name ?? sub,
            preferred_username: sub,
            email: user.email ?? `${sub}@example.invalid`,
            email_verified: true,
            groups: user.groups ?? [],
          };
        },
      };
    },
    ttl: { Session: 3600, Interaction: 600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
